"""Writing the rollout status and noticing a stalled rollout (upstream progress.go).

The decision is `status.rollout_status`; here it is written when it differs from what is stored.
When nothing changed and the rollout still has a deadline ahead, the deployment is requeued for
just after the deadline, so ProgressDeadlineExceeded is reported even if no event ever arrives.
"""

from __future__ import annotations

import time

from kubelite.controllers.deployment.context import Rollout
from kubelite.controllers.deployment.status import rollout_status, same_status, stuck_requeue_delay
from kubelite.controllers.deployment.util import Obj


async def sync_rollout_status(r: Rollout, all_rss: list[Obj | None], new_rs: Obj | None) -> None:
    now = time.time()
    new_rs = r.fresh(new_rs)
    all_rss = [r.fresh(rs) for rs in all_rss]
    status = rollout_status(r.d, all_rss, new_rs, now=now)
    if same_status(r.d.get("status"), status):
        delay = stuck_requeue_delay(r.d, status, now=now)
        if delay is not None:
            r.controller.queue.add_after(r.key, max(delay, 0.1))
        return
    r.d["status"] = status
    await r.update_status()

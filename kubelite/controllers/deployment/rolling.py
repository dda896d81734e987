"""The RollingUpdate strategy (upstream rolling.go): grow the new RS within maxSurge, shrink old
RSs within maxUnavailable, one step per sync; each RS change triggers the next sync.

Step decisions are pure (`new_rs_new_replicas` in util, `plan_old_scale_down` here):
- up: total spec replicas may reach replicas + maxSurge; the new RS never exceeds replicas;
- down: first old replicas that are not available anyway (oldest RS first), then as many old
  replicas as keep availableReplicas >= replicas - maxUnavailable, counting the new RS's
  not-yet-available replicas as unavailable.
"""

from __future__ import annotations

from kubelite.controllers.deployment.context import Rollout
from kubelite.controllers.deployment.progress import sync_rollout_status
from kubelite.controllers.deployment.status import deployment_complete
from kubelite.controllers.deployment.sync import cleanup_deployment, get_all_and_sync_revision
from kubelite.controllers.deployment.util import (
    Obj,
    active,
    by_creation,
    max_unavailable,
    new_rs_new_replicas,
    replicas,
    spec_total,
    status_total,
)


def _available(rs: Obj | None) -> int:
    return int(((rs or {}).get("status") or {}).get("availableReplicas") or 0)


def plan_old_scale_down(d: Obj, all_rss: list[Obj], old_active: list[Obj], new_rs: Obj) -> list[tuple[str, int]]:
    """Ordered (old RS name, new size) steps for one sync (reconcileOldReplicaSets)."""
    if spec_total(list(old_active)) == 0:
        return []
    min_available = replicas(d) - max_unavailable(d)
    new_unavailable = replicas(new_rs) - _available(new_rs)
    budget = spec_total(list(all_rss)) - min_available - new_unavailable
    if budget <= 0:
        return []
    sizes = {rs["metadata"]["name"]: replicas(rs) for rs in old_active}
    steps: list[tuple[str, int]] = []
    done = 0
    for rs in by_creation(old_active):  # unhealthy replicas go first: removing them costs no availability
        name = rs["metadata"]["name"]
        if done >= budget:
            break
        if sizes[name] == 0 or sizes[name] == _available(rs):
            continue
        cut = min(budget - done, sizes[name] - _available(rs))
        sizes[name] -= cut
        steps.append((name, sizes[name]))
        done += cut
    available = status_total([*old_active, new_rs], "availableReplicas")
    if available <= min_available:
        return steps
    budget, done = available - min_available, 0
    for rs in by_creation(old_active):
        name = rs["metadata"]["name"]
        if done >= budget:
            break
        if sizes[name] == 0:
            continue
        cut = min(sizes[name], budget - done)
        sizes[name] -= cut
        steps.append((name, sizes[name]))
        done += cut
    return steps


async def rollout_rolling(r: Rollout) -> None:
    new_rs, olds = await get_all_and_sync_revision(r, create=True)
    assert new_rs is not None
    if await _reconcile_new(r, [*olds, new_rs], new_rs):
        await sync_rollout_status(r, [*olds, new_rs], new_rs)
        return
    new_rs, olds = r.fresh(new_rs) or new_rs, r.fresh_all(olds)
    if await _reconcile_old(r, [*olds, new_rs], active(list(olds)), new_rs):
        await sync_rollout_status(r, [*olds, new_rs], new_rs)
        return
    if deployment_complete(r.d, r.d.get("status") or {}):
        await cleanup_deployment(r, olds)
    await sync_rollout_status(r, [*r.fresh_all(olds), new_rs], new_rs)


async def _reconcile_new(r: Rollout, all_rss: list[Obj], new_rs: Obj) -> bool:
    want = replicas(r.d)
    if replicas(new_rs) == want:
        return False
    target = want if replicas(new_rs) > want else new_rs_new_replicas(r.d, all_rss, new_rs)
    scaled, _ = await r.scale_and_record(new_rs, target)
    return scaled


async def _reconcile_old(r: Rollout, all_rss: list[Obj], old_active: list[Obj], new_rs: Obj) -> bool:
    by_name = {rs["metadata"]["name"]: rs for rs in old_active}
    steps = plan_old_scale_down(r.d, all_rss, old_active, new_rs)
    for name, size in steps:
        await r.scale_and_record(by_name[name], size)
    return bool(steps)

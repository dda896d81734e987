"""The Recreate strategy (upstream recreate.go): scale every old RS to 0, wait until none of their
pods is left running, only then create (or scale up) the new RS at full size."""

from __future__ import annotations

from kubelite.controllers.deployment.context import Rollout
from kubelite.controllers.deployment.progress import sync_rollout_status
from kubelite.controllers.deployment.status import deployment_complete
from kubelite.controllers.deployment.sync import cleanup_deployment, get_all_and_sync_revision
from kubelite.controllers.deployment.util import Obj, active, replicas, status_total


def old_pods_running(new_rs: Obj | None, olds: list[Obj], pod_map: dict[str, list[Obj]]) -> bool:
    """Do old RSs still report pods, or does any non-terminal pod of an old RS remain?"""
    if status_total(list(olds)) > 0:
        return True
    new_uid = (new_rs or {}).get("metadata", {}).get("uid")
    for rs_uid, pods in pod_map.items():
        if new_rs is not None and rs_uid == new_uid:
            continue
        if any((pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded") for pod in pods):
            return True
    return False


async def rollout_recreate(r: Rollout) -> None:
    new_rs, olds = await get_all_and_sync_revision(r, create=False)
    scaled_down = False
    for rs in active(list(olds)):
        scaled, _ = await r.scale_and_record(rs, 0)
        scaled_down = scaled_down or scaled
    if scaled_down or old_pods_running(new_rs, r.fresh_all(olds), r.pod_map):
        await sync_rollout_status(r, [*olds, new_rs], new_rs)
        return
    if new_rs is None:
        new_rs, olds = await get_all_and_sync_revision(r, create=True)
    assert new_rs is not None
    await r.scale_and_record(new_rs, replicas(r.d))
    if deployment_complete(r.d, r.d.get("status") or {}):
        await cleanup_deployment(r, olds)
    await sync_rollout_status(r, [*olds, new_rs], new_rs)

"""Rolling back.

`kubectl rollout undo` does it client-side: it copies an old RS's template (without
pod-template-hash) and change-cause into the deployment with a JSON patch. The controller then
simply finds that old RS as the deployment's new RS (equal template) and gives it the next
revision, its old revision moving to `revision-history` (see `sync.get_all_and_sync_revision` and
`util.set_new_rs_annotations`): no new RS, no new pod-template-hash.

This module is the controller-side path upstream keeps for the deprecated
`deprecated.deployment.rollback.to` annotation (extensions/v1beta1 `spec.rollbackTo`): revision 0
means the previous one; the annotation is cleared whether or not the rollback happened.
"""

from __future__ import annotations

import copy

from kubelite.controllers.deployment.context import Rollout
from kubelite.controllers.deployment.sync import get_all_and_sync_revision
from kubelite.controllers.deployment.util import (
    ROLLBACK_TO,
    SKIPPED_ANNOTATIONS,
    Obj,
    annotations_of,
    equal_ignore_hash,
    last_revision,
    revision,
    without_hash,
)


def rollback_to(d: Obj) -> int | None:
    raw = annotations_of(d).get(ROLLBACK_TO)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return 0


def rolled_back(d: Obj, rs: Obj) -> Obj:
    """`d` with `rs`'s template and annotations (its own bookkeeping annotations kept), as upstream
    SetFromReplicaSetTemplate + SetDeploymentAnnotationsTo."""
    out = copy.deepcopy(d)
    out["spec"]["template"] = without_hash((rs.get("spec") or {}).get("template") or {})
    kept = {k: v for k, v in annotations_of(d).items() if k in SKIPPED_ANNOTATIONS}
    kept.update({k: v for k, v in annotations_of(rs).items() if k not in SKIPPED_ANNOTATIONS})
    out.setdefault("metadata", {})["annotations"] = kept
    return out


async def rollback(r: Rollout) -> None:
    new_rs, olds = await get_all_and_sync_revision(r, create=True)
    all_rss = [rs for rs in [*olds, new_rs] if rs is not None]
    target = rollback_to(r.d) or last_revision(all_rss)
    if target == 0:
        r.record("Warning", "RollbackRevisionNotFound", "Unable to find last revision.")
        await _clear(r)
        return
    rs = next((rs for rs in all_rss if revision(rs) == target), None)
    if rs is None:
        r.record("Warning", "RollbackRevisionNotFound", "Unable to find the revision to rollback to.")
        await _clear(r)
        return
    template = (r.d.get("spec") or {}).get("template") or {}
    if equal_ignore_hash(template, (rs.get("spec") or {}).get("template") or {}):
        r.record("Warning", "RollbackTemplateUnchanged",
                 f'The rollback revision contains the same template as current deployment "{r.name}"')
        await _clear(r)
        return
    r.d = rolled_back(r.d, rs)
    await _clear(r)
    r.record("Normal", "DeploymentRollback", f'Rolled back deployment "{r.name}" to revision {target}')


async def _clear(r: Rollout) -> None:
    r.d.setdefault("metadata", {}).setdefault("annotations", {}).pop(ROLLBACK_TO, None)
    await r.update_deployment()

"""Finding or creating the new ReplicaSet, scaling (also while paused or mid-rollout), revision
history clean-up and the plain status sync (upstream pkg/controller/deployment/sync.go).

The new RS is the oldest RS whose template equals the deployment's, ignoring pod-template-hash:
after `kubectl rollout undo` (which copies an old RS's template into the deployment) that is the
old RS, which is then reused under the next revision number, its previous revision moving to
`revision-history`. Otherwise a new RS `<deployment>-<hash>` is created; a name taken by an RS
with another template is a hash collision, resolved by bumping status.collisionCount and retrying.
"""

from __future__ import annotations

import contextlib
import copy
import time

from kubelite.controllers.deployment.context import Rollout
from kubelite.controllers.deployment.status import (
    FAILED_RS_CREATE,
    FOUND_NEW_RS,
    NEW_RS_CREATED,
    PROGRESSING,
    calculate_status,
    get_condition,
    new_condition,
    paused_condition,
    same_status,
    set_condition,
    wire,
)
from kubelite.controllers.deployment.util import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    REVISION,
    ROLLBACK_TO,
    Obj,
    active,
    annotations_of,
    compute_hash,
    created_key,
    equal_ignore_hash,
    find_new_rs,
    has_progress_deadline,
    int_annotation,
    is_rolling,
    is_saturated,
    max_revision,
    max_surge,
    new_rs_new_replicas,
    new_rs_template,
    old_rss,
    replicas,
    revision,
    selector_with_hash,
    set_new_rs_annotations,
    spec_total,
)
from kubelite.controllers.replicaset import controller_ref, namespace_terminating, new_controller_ref
from kubelite.objects.errors import AlreadyExists, NotFound, StatusError


async def get_all_and_sync_revision(r: Rollout, *, create: bool) -> tuple[Obj | None, list[Obj]]:
    """(new RS or None, all old RSs); syncs the new RS's revision annotations and the deployment's."""
    new_rs = find_new_rs(r.d, r.rss)
    olds = old_rss(r.rss, new_rs)
    new_revision = max_revision(olds) + 1
    if new_rs is not None:
        return await _sync_existing(r, new_rs, new_revision), olds
    if not create:
        return None, olds
    return await _create_new(r, olds, new_revision), olds


async def _sync_existing(r: Rollout, rs: Obj, new_revision: int) -> Obj:
    changed = copy.deepcopy(rs)
    annotated = set_new_rs_annotations(r.d, changed, new_revision, exists=True)
    min_ready = int((r.d.get("spec") or {}).get("minReadySeconds") or 0)
    if annotated or int((changed.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
        changed["spec"]["minReadySeconds"] = min_ready
        return await r.update_rs(changed)
    needs_update = r.set_revision(annotations_of(rs).get(REVISION))
    if has_progress_deadline(r.d) and get_condition(r.d.get("status") or {}, PROGRESSING) is None:
        set_condition(r.d.setdefault("status", {}), new_condition(
            PROGRESSING, "True", FOUND_NEW_RS, f'Found new replica set "{rs["metadata"]["name"]}"', now=time.time()))
        needs_update = True
    if needs_update:
        await r.update_status()
    return rs


def new_replica_set(d: Obj, olds: list[Obj], new_revision: int) -> Obj:
    """The RS a deployment's current template calls for (name, labels, selector, size, annotations)."""
    spec = d.get("spec") or {}
    pod_hash = compute_hash(spec.get("template") or {}, (d.get("status") or {}).get("collisionCount"))
    template = new_rs_template(d, pod_hash)
    rs_spec: Obj = {"replicas": 0, "selector": selector_with_hash(spec.get("selector") or {}, pod_hash),
                    "template": template}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    rs: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": f"{d['metadata']['name']}-{pod_hash}", "namespace": d["metadata"].get("namespace"),
                            "ownerReferences": [new_controller_ref(d)],
                            "labels": dict(template["metadata"]["labels"])},
               "spec": rs_spec}
    rs_spec["replicas"] = new_rs_new_replicas(d, [*olds, rs], rs)
    set_new_rs_annotations(d, rs, new_revision, exists=False)
    return rs


async def _create_new(r: Rollout, olds: list[Obj], new_revision: int) -> Obj:
    rs = new_replica_set(r.d, olds, new_revision)
    name, count = rs["metadata"]["name"], replicas(rs)
    try:
        created, existed = await r.create_rs(rs), False
    except AlreadyExists:
        created, existed = await _existing_or_collision(r, name), True
    except StatusError as exc:
        if not namespace_terminating(exc):
            await _report_create_failure(r, f'Failed to create new replica set "{name}": {exc.message}')
        raise
    if not existed and count > 0:
        r.record("Normal", "ScalingReplicaSet", f"Scaled up replica set {name} from 0 to {count}")
    needs_update = r.set_revision(str(new_revision))
    if not existed and has_progress_deadline(r.d):
        set_condition(r.d.setdefault("status", {}), new_condition(
            PROGRESSING, "True", NEW_RS_CREATED, f'Created new replica set "{name}"', now=time.time()))
        needs_update = True
    if needs_update:
        await r.update_status()
    return created


async def _existing_or_collision(r: Rollout, name: str) -> Obj:
    """The RS that took our name: ours (a slow cache) or a hash collision (bump the count, retry)."""
    existing = r.controller.rs_informer.get(f"{r.namespace}/{name}")
    if existing is None:
        raise NotFound(f'replicasets.apps "{name}" exists but is not in the cache yet')
    ref = controller_ref(existing)
    template = (r.d.get("spec") or {}).get("template") or {}
    if ref is not None and ref.get("uid") == r.d["metadata"].get("uid") and \
            equal_ignore_hash(template, (existing.get("spec") or {}).get("template") or {}):
        return r.remember(existing)
    status = r.d.setdefault("status", {})
    status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
    await r.update_status()
    raise AlreadyExists(f"hash collision on replica set {name}; collisionCount is now {status['collisionCount']}")


async def _report_create_failure(r: Rollout, message: str) -> None:
    if has_progress_deadline(r.d):
        set_condition(r.d.setdefault("status", {}),
                      new_condition(PROGRESSING, "False", FAILED_RS_CREATE, message, now=time.time()))
        with contextlib.suppress(StatusError):  # the create failure is the error worth returning
            await r.update_status()
    r.record("Warning", FAILED_RS_CREATE, message)


# ----- scaling -----------------------------------------------------------------------------------

def find_active_or_latest(new_rs: Obj | None, olds: list[Obj]) -> Obj | None:
    """The one RS with replicas (or the newest when none has any); None when several have."""
    if new_rs is None and not olds:
        return None
    newest_first = sorted(olds, key=created_key, reverse=True)
    running = active([*newest_first, new_rs])
    if not running:
        return new_rs if new_rs is not None else newest_first[0]
    return running[0] if len(running) == 1 else None


def _fraction(rs: Obj, d: Obj) -> int:
    if replicas(d) == 0:
        return -replicas(rs)
    before = int_annotation(rs, MAX_REPLICAS)
    if not before:
        before = int((d.get("status") or {}).get("replicas") or 0)
        if before == 0:
            return 0
    scaled = replicas(rs) * (replicas(d) + max_surge(d)) / before
    rounded = int(scaled + 0.5) if scaled >= 0 else int(scaled - 0.5)  # Go's RoundToInt32
    return rounded - replicas(rs)


def _proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction, allowed = _fraction(rs, d), to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: Obj, running: list[Obj]) -> list[tuple[Obj, int]]:
    """New sizes when the deployment is resized mid-rollout: the surplus or shortfall against
    replicas+maxSurge is spread over the active RSs in proportion to their sizes, larger first
    (newer first when scaling up, older first when scaling down); leftovers go to the first."""
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - spec_total(list(running))
    by_age = sorted(running, key=created_key, reverse=to_add > 0)
    order = sorted(by_age, key=lambda rs: -replicas(rs))  # stable: ties keep the age order
    sizes, added = [], 0
    for rs in order:
        share = _proportion(rs, d, to_add, added)
        sizes.append(replicas(rs) + share)
        added += share
    if order and to_add != 0:
        sizes[0] = max(0, sizes[0] + to_add - added)
    return list(zip(order, sizes, strict=True))


async def scale(r: Rollout, new_rs: Obj | None, olds: list[Obj]) -> None:
    target = find_active_or_latest(new_rs, olds)
    if target is not None:
        if replicas(target) != replicas(r.d):
            await r.scale_and_record(target, replicas(r.d))
        return
    if is_saturated(r.d, new_rs):
        for old in active(list(olds)):
            await r.scale_and_record(old, 0)
        return
    if is_rolling(r.d):
        for rs, size in proportional_sizes(r.d, active([*olds, new_rs])):
            await r.scale_rs(rs, size)


async def is_scaling_event(r: Rollout) -> bool:
    """Does an active RS carry a desired-replicas annotation other than the deployment's size?"""
    new_rs, olds = await get_all_and_sync_revision(r, create=False)
    for rs in active([*olds, new_rs]):
        desired = int_annotation(rs, DESIRED_REPLICAS)
        if desired is not None and desired != replicas(r.d):
            return True
    return False


# ----- history, pause, plain status -------------------------------------------------------------

def history_to_clean(d: Obj, olds: list[Obj]) -> list[Obj]:
    """Old RSs beyond revisionHistoryLimit, lowest revision first, only those fully scaled down."""
    limit = (d.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None:
        return []
    alive = [rs for rs in olds if not rs["metadata"].get("deletionTimestamp")]
    excess = len(alive) - int(limit)
    if excess <= 0:
        return []
    ordered = sorted(alive, key=lambda rs: (revision(rs), created_key(rs)))
    return [rs for rs in ordered[:excess]
            if not int((rs.get("status") or {}).get("replicas") or 0) and replicas(rs) == 0
            and int(rs["metadata"].get("generation") or 0) <= int((rs.get("status") or {}).get("observedGeneration") or 0)]


async def cleanup_deployment(r: Rollout, olds: list[Obj]) -> None:
    for rs in history_to_clean(r.d, r.fresh_all(olds)):
        with contextlib.suppress(NotFound):
            await r.delete_rs(rs)


async def check_paused_conditions(r: Rollout) -> None:
    cond = paused_condition(r.d, now=time.time())
    if cond is not None:
        set_condition(r.d.setdefault("status", {}), cond)
        await r.update_status()


async def sync_deployment_status(r: Rollout, all_rss: list[Obj | None], new_rs: Obj | None) -> None:
    status = wire(calculate_status(all_rss, new_rs, r.d, now=time.time()))
    if not same_status(r.d.get("status"), status):
        r.d["status"] = status
        await r.update_status()


async def sync_status_only(r: Rollout) -> None:
    new_rs, olds = await get_all_and_sync_revision(r, create=False)
    await sync_deployment_status(r, [*olds, new_rs], new_rs)


async def sync_scaling(r: Rollout) -> None:
    """A paused deployment or a resize: scale the existing RSs, no rollout (upstream `sync`)."""
    new_rs, olds = await get_all_and_sync_revision(r, create=False)
    await scale(r, new_rs, olds)
    if (r.d.get("spec") or {}).get("paused") and ROLLBACK_TO not in annotations_of(r.d):
        await cleanup_deployment(r, olds)
    new_rs, olds = r.fresh(new_rs), r.fresh_all(olds)
    await sync_deployment_status(r, [*olds, new_rs], new_rs)

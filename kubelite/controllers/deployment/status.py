"""Pure Deployment status: counts from the ReplicaSets, the Available and Progressing conditions,
and the progress-deadline arithmetic (upstream sync.go calculateStatus, progress.go and the
condition helpers of deployment/util).

`rollout_status` is the whole decision `kubectl rollout status` later reads: it never does I/O, takes
`now` explicitly, and returns the status in wire form (zero counts omitted, as the Go types do).
"""

from __future__ import annotations

import copy
from typing import Any

from kubelite.controllers.deployment.util import (
    Obj,
    has_progress_deadline,
    max_unavailable,
    replicas,
    spec_total,
    status_total,
)
from kubelite.controllers.replicaset import parse_time, rfc3339

AVAILABLE, PROGRESSING, REPLICA_FAILURE = "Available", "Progressing", "ReplicaFailure"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED, RESUMED = "DeploymentPaused", "DeploymentResumed"
NEW_RS_CREATED, FOUND_NEW_RS, FAILED_RS_CREATE = "NewReplicaSetCreated", "FoundNewReplicaSet", "ReplicaSetCreateError"


# ----- conditions --------------------------------------------------------------------------------

def new_condition(ctype: str, status: str, reason: str, message: str, *, now: float) -> Obj:
    stamp = rfc3339(now)
    return {"type": ctype, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def get_condition(status: Obj, ctype: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


def set_condition(status: Obj, cond: Obj) -> None:
    """Same status and reason: keep the old one untouched; same status: keep its transition time."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, cond["type"])
    status["conditions"] = [*(status.get("conditions") or []), cond]


def remove_condition(status: Obj, ctype: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != ctype]


def wire(status: Obj) -> Obj:
    """Status as the Go type serializes it: zero counts and empty lists omitted; collisionCount is a
    pointer, so 0 stays."""
    return {k: v for k, v in status.items() if k == "collisionCount" and v is not None or v not in (0, None, [])}


# ----- counts ------------------------------------------------------------------------------------

def calculate_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj, *, now: float) -> Obj:
    available = status_total(all_rss, "availableReplicas")
    status: Obj = {
        "observedGeneration": (d.get("metadata") or {}).get("generation"),
        "replicas": status_total(all_rss),
        "updatedReplicas": status_total([new_rs]),
        "readyReplicas": status_total(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(0, spec_total(all_rss) - available),
        "collisionCount": (d.get("status") or {}).get("collisionCount"),
        "conditions": copy.deepcopy((d.get("status") or {}).get("conditions") or []),
    }
    if available >= replicas(d) - max_unavailable(d):
        set_condition(status, new_condition(AVAILABLE, "True", "MinimumReplicasAvailable",
                                            "Deployment has minimum availability.", now=now))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", "MinimumReplicasUnavailable",
                                            "Deployment does not have minimum availability.", now=now))
    return status


def _count(status: Obj, field: str) -> int:
    return int(status.get(field) or 0)


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = replicas(d)
    return _count(status, "updatedReplicas") == want and _count(status, "replicas") == want and \
        _count(status, "availableReplicas") == want and \
        _count(status, "observedGeneration") >= _count(d.get("metadata") or {}, "generation")


def deployment_progressing(d: Obj, status: Obj) -> bool:
    """Any sign of progress since the stored status: more updated, fewer old, more ready or available."""
    old = d.get("status") or {}
    old_old = _count(old, "replicas") - _count(old, "updatedReplicas")
    new_old = _count(status, "replicas") - _count(status, "updatedReplicas")
    return _count(status, "updatedReplicas") > _count(old, "updatedReplicas") or new_old < old_old or \
        _count(status, "readyReplicas") > _count(old, "readyReplicas") or \
        _count(status, "availableReplicas") > _count(old, "availableReplicas")


def deadline_seconds(d: Obj) -> int:
    return int((d.get("spec") or {}).get("progressDeadlineSeconds") or 0)


def deployment_timed_out(d: Obj, status: Obj, *, now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + deadline_seconds(d) < now


# ----- the rollout status (upstream syncRolloutStatus) -------------------------------------------

def rollout_status(d: Obj, all_rss: list[Obj | None], new_rs: Obj | None, *, now: float) -> Obj:
    status = calculate_status(all_rss, new_rs, d, now=now)
    if not has_progress_deadline(d):
        remove_condition(status, PROGRESSING)
    current = get_condition(d.get("status") or {}, PROGRESSING)
    complete = _count(status, "replicas") == _count(status, "updatedReplicas") and current is not None and \
        current.get("reason") == NEW_RS_AVAILABLE
    if has_progress_deadline(d) and not complete:
        _progress(d, status, new_rs, current, now=now)
    failures = replica_failures(all_rss, new_rs)
    if failures:
        set_condition(status, failures[0])
    else:
        remove_condition(status, REPLICA_FAILURE)
    return wire(status)


def _progress(d: Obj, status: Obj, new_rs: Obj | None, current: Obj | None, *, now: float) -> None:
    name = (d.get("metadata") or {}).get("name")
    subject = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs is not None else f'Deployment "{name}"'
    if deployment_complete(d, status):
        set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE,
                                            f"{subject} has successfully progressed.", now=now))
    elif deployment_progressing(d, status):
        # unlike set_condition, progress with the same reason still moves lastUpdateTime
        cond = new_condition(PROGRESSING, "True", RS_UPDATED, f"{subject} is progressing.", now=now)
        if current is not None:
            if current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime")
            remove_condition(status, PROGRESSING)
        set_condition(status, cond)
    elif deployment_timed_out(d, status, now=now):
        set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT,
                                            f"{subject} has timed out progressing.", now=now))


def replica_failures(all_rss: list[Obj | None], new_rs: Obj | None) -> list[Obj]:
    """ReplicaFailure conditions of the new RS, else of any RS, as deployment conditions."""
    def of(rs: Obj | None) -> list[Obj]:
        return [{"type": REPLICA_FAILURE, "status": c.get("status"), "lastUpdateTime": c.get("lastTransitionTime"),
                 "lastTransitionTime": c.get("lastTransitionTime"), "reason": c.get("reason"),
                 "message": c.get("message")}
                for c in ((rs or {}).get("status") or {}).get("conditions") or [] if c.get("type") == REPLICA_FAILURE]

    return of(new_rs) or [c for rs in all_rss for c in of(rs)]


def stuck_requeue_delay(d: Obj, status: Obj, *, now: float) -> float | None:
    """When to look again at a rollout showing no progress, so the deadline is noticed without
    any event (upstream requeueStuckDeployment); None when there is nothing to wait for."""
    current = get_condition(d.get("status") or {}, PROGRESSING)
    if not has_progress_deadline(d) or current is None:
        return None
    if deployment_complete(d, status) or current.get("reason") == TIMED_OUT:
        return None
    since = parse_time(current.get("lastUpdateTime"))
    if since is None:
        return None
    after = since + deadline_seconds(d) - now
    return 0.0 if after < 1 else after + 1


def paused_condition(d: Obj, *, now: float) -> Obj | None:
    """The Progressing condition a pause or resume calls for (upstream checkPausedConditions),
    None when nothing changes. A reported timeout is never overwritten by a pause."""
    if not has_progress_deadline(d):
        return None
    cond = get_condition(d.get("status") or {}, PROGRESSING)
    if cond is not None and cond.get("reason") == TIMED_OUT:
        return None
    paused_shown = cond is not None and cond.get("reason") == PAUSED
    paused = bool((d.get("spec") or {}).get("paused"))
    if paused and not paused_shown:
        return new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now=now)
    if not paused and paused_shown:
        return new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now=now)
    return None


def same_status(current: Any, new: Obj) -> bool:
    return wire(dict(current or {})) == new

"""Taints and tolerations, pure: which taints a node's conditions call for, whether a pod
tolerates a node's NoExecute taints, and for how long (upstream's taint helpers and the taint
eviction controller's decision).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "NoExecute"

# condition type -> {status: taint key}, as upstream's nodeConditionToTaintKeyStatusMap
CONDITION_TAINTS: dict[str, dict[str, str]] = {
    "Ready": {"False": NOT_READY, "Unknown": UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
CONDITION_TAINT_KEYS = frozenset(k for by_status in CONDITION_TAINTS.values() for k in by_status.values())


def taints(node: Obj) -> list[Obj]:
    return [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]


def no_execute(node: Obj) -> list[Obj]:
    return [t for t in taints(node) if t.get("effect") == NO_EXECUTE]


def has_taint(node: Obj, key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect for t in taints(node))


def condition(node: Obj, kind: str) -> Obj | None:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def ready_status(node: Obj) -> str:
    """"True", "False" or "Unknown" ("Unknown" when the node never posted a Ready condition)."""
    cond = condition(node, "Ready")
    return str(cond.get("status") or "Unknown") if cond else "Unknown"


def wanted_no_schedule(node: Obj) -> set[str]:
    """Keys of the NoSchedule taints the node's conditions (and cordon) call for."""
    wanted = set()
    for cond in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TAINTS.get(str(cond.get("type")), {}).get(str(cond.get("status")))
        if key:
            wanted.add(key)
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.add(UNSCHEDULABLE)
    return wanted


def no_schedule_diff(node: Obj) -> tuple[set[str], set[str]]:
    """(keys to add, keys to remove) among the NoSchedule taints this controller manages."""
    managed = CONDITION_TAINT_KEYS | {UNSCHEDULABLE}
    present = {str(t.get("key")) for t in taints(node) if t.get("effect") == NO_SCHEDULE and t.get("key") in managed}
    wanted = wanted_no_schedule(node)
    return wanted - present, present - wanted


def with_taints(node: Obj, *, add: Iterable[tuple[str, str]] = (), remove: Iterable[tuple[str, str]] = (),
                now: str) -> list[Obj]:
    """The node's taints with (key, effect) pairs removed and added (timeAdded `now`)."""
    gone = set(remove)
    result = [t for t in taints(node) if (t.get("key"), t.get("effect")) not in gone]
    present = {(t.get("key"), t.get("effect")) for t in result}
    for key, effect in add:
        if (key, effect) not in present:
            result.append({"key": key, "effect": effect, "timeAdded": now})
    return result


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Upstream's Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def matching_tolerations(node_taints: list[Obj], tolerations: list[Obj]) -> tuple[bool, list[Obj]]:
    """(every taint tolerated, the first toleration matching each taint)."""
    used = []
    for taint in node_taints:
        match = next((t for t in tolerations if isinstance(t, dict) and tolerates(t, taint)), None)
        if match is None:
            return False, []
        used.append(match)
    return True, used


def toleration_seconds(used: list[Obj]) -> float | None:
    """The shortest tolerationSeconds among `used` (0 for none or any ≤ 0); None if they all
    tolerate forever."""
    if not used:
        return 0.0
    bounded = [int(t["tolerationSeconds"]) for t in used if t.get("tolerationSeconds") is not None]
    if not bounded:
        return None
    return max(0.0, float(min(bounded)))


def eviction_delay(pod: Obj, node_taints: list[Obj]) -> float | None:
    """Seconds after the node was tainted when `pod` must go (0: at once), or None: never."""
    if not node_taints:
        return None
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    all_tolerated, used = matching_tolerations(node_taints, tolerations)
    if not all_tolerated:
        return 0.0
    return toleration_seconds(used)

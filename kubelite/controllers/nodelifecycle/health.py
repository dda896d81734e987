"""Node health, pure: when did we last see a node alive, what to write when it went silent, and
which NoExecute taints each node should carry (upstream's tryUpdateNodeHealth, ComputeZoneState
and processTaintBaseEviction).

Liveness is judged by our own clock: a node's probe time is when *we* saw its Lease renewTime or
its Ready heartbeat change, never the timestamps themselves, so clock skew between machines does
not matter. A controller that starts (or restarts) gives every node a full grace period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubelite.controllers.nodelifecycle.taints import NO_EXECUTE, NOT_READY, UNREACHABLE, condition, has_taint

Obj = dict[str, Any]

MONITORED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
EXCLUDE_DISRUPTION = "node.kubernetes.io/exclude-disruption"
UNHEALTHY_ZONE_THRESHOLD = 0.55
LARGE_CLUSTER_THRESHOLD = 50
EVICTION_QPS = 0.1  # NoExecute taints added per second per zone (upstream --node-eviction-rate)
SECONDARY_EVICTION_QPS = 0.01  # in a partially disrupted large zone

NORMAL, PARTIAL, FULL = "Normal", "PartialDisruption", "FullDisruption"


@dataclass(frozen=True)
class Health:
    probe: float  # our monotonic clock when we last saw a sign of life
    heartbeat: str  # the Ready condition's lastHeartbeatTime we saw then
    lease_renew: str  # the Lease renewTime we saw then


def observe(previous: Health | None, node: Obj, lease: Obj | None, now: float) -> Health:
    ready = condition(node, "Ready") or {}
    heartbeat = str(ready.get("lastHeartbeatTime") or "")
    renew = str(((lease or {}).get("spec") or {}).get("renewTime") or "")
    if previous is None:
        return Health(now, heartbeat, renew)
    probe = previous.probe
    if heartbeat != previous.heartbeat:
        probe = now
    if renew and renew != previous.lease_renew:
        probe = now
    return Health(probe, heartbeat, renew or previous.lease_renew)


def silent(health: Health, node: Obj, now: float, *, grace: float, startup_grace: float) -> bool:
    """Whether the node has shown no sign of life for its grace period (the longer startup grace
    while it has never posted a Ready condition)."""
    period = grace if condition(node, "Ready") is not None else startup_grace
    return now > health.probe + period


def unknown_conditions(node: Obj, now: str) -> list[Obj] | None:
    """The node's conditions with the monitored ones turned Unknown, or None if they already are."""
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    by_type = {c.get("type"): c for c in conditions}
    changed = False
    created = (node.get("metadata") or {}).get("creationTimestamp")
    for kind in MONITORED_CONDITIONS:
        cond = by_type.get(kind)
        if cond is None:
            conditions.append({"type": kind, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status.", "lastHeartbeatTime": created,
                               "lastTransitionTime": now})
            changed = True
        elif cond.get("status") != "Unknown":
            cond.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                        lastTransitionTime=now)
            changed = True
    return conditions if changed else None


# ----- zones and the NoExecute taints -------------------------------------------------------------

def zone_of(node: Obj) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    region = labels.get("topology.kubernetes.io/region") or labels.get("failure-domain.beta.kubernetes.io/region", "")
    zone = labels.get("topology.kubernetes.io/zone") or labels.get("failure-domain.beta.kubernetes.io/zone", "")
    return f"{region}:\x00:{zone}" if region or zone else ""


def zone_state(ready_statuses: list[str]) -> str:
    not_ready = sum(1 for s in ready_statuses if s != "True")
    if ready_statuses and not_ready == len(ready_statuses):
        return FULL
    if not_ready > 2 and not_ready / len(ready_statuses) >= UNHEALTHY_ZONE_THRESHOLD:
        return PARTIAL
    return NORMAL


def zone_rate(state: str, size: int) -> float:
    if state == PARTIAL:
        return SECONDARY_EVICTION_QPS if size > LARGE_CLUSTER_THRESHOLD else 0.0
    return EVICTION_QPS


def zone_states(nodes: list[Obj], ready: dict[str, str]) -> dict[str, tuple[str, int]]:
    """zone -> (state, size), over the nodes not excluded from disruption checks."""
    by_zone: dict[str, list[str]] = {}
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        if EXCLUDE_DISRUPTION not in labels:
            by_zone.setdefault(zone_of(node), []).append(ready.get(node["metadata"]["name"], "Unknown"))
    return {zone: (zone_state(statuses), len(statuses)) for zone, statuses in by_zone.items()}


@dataclass(frozen=True)
class TaintAction:
    add: tuple[str, ...] = ()  # NoExecute taint keys to add
    remove: tuple[str, ...] = ()
    rate_limited: bool = False  # the add must wait for the zone's eviction rate


def no_execute_action(node: Obj, ready: str, *, all_disrupted: bool) -> TaintAction:
    """What the node's NoExecute taints should become: not-ready for Ready=False, unreachable for
    Unknown, none when Ready (or when every zone is down: then the control plane is the likelier
    culprit, and upstream evicts nothing)."""
    has_not_ready, has_unreachable = has_taint(node, NOT_READY, NO_EXECUTE), has_taint(node, UNREACHABLE, NO_EXECUTE)
    if ready == "True" or all_disrupted:
        return TaintAction(remove=tuple(k for k, on in ((NOT_READY, has_not_ready), (UNREACHABLE, has_unreachable))
                                        if on))
    wanted, opposite = (NOT_READY, UNREACHABLE) if ready == "False" else (UNREACHABLE, NOT_READY)
    if has_taint(node, wanted, NO_EXECUTE):
        return TaintAction(remove=(opposite,) if has_taint(node, opposite, NO_EXECUTE) else ())
    if has_taint(node, opposite, NO_EXECUTE):
        return TaintAction(add=(wanted,), remove=(opposite,))  # a swap is not rate limited
    return TaintAction(add=(wanted,), rate_limited=True)


@dataclass
class TokenBucket:
    """Adds allowed at `rate` per second with a burst of one (upstream's eviction limiter)."""

    rate: float
    tokens: float = 1.0
    last: float | None = None
    burst: float = field(default=1.0)

    def take(self, now: float) -> bool:
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def refund(self) -> None:
        """Give back the token of an add that failed (a write conflict), so it is retried at once."""
        self.tokens = min(self.burst, self.tokens + 1.0)

"""The pod table: READY, STATUS and RESTARTS exactly as upstream's `printPod` derives them.

STATUS starts from the phase (or status.reason), is overridden by the first unfinished init
container (`Init:1/3`, `Init:CrashLoopBackOff`, `Init:Error`, `Init:ExitCode:N`), then, once
initialization is over, by the last app container with a waiting/terminated reason, and finally by
`Terminating` (or `Unknown` for a NodeLost pod) while a deletion timestamp is set. Restartable init
containers (sidecars) count towards READY's total and, after initialization, towards RESTARTS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from kubelite.objects.tables.common import (
    AGE,
    NAME,
    NONE,
    Cell,
    Column,
    Obj,
    Printer,
    age_of,
    get,
    integer,
    items,
    mapping,
    name_of,
    present,
    text,
)
from kubelite.objects.tables.duration import parse_time, since

COLUMNS = (
    NAME,
    Column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", description="The aggregate status of the containers in this pod."),
    Column("Restarts", description="The number of times the containers in this pod have been restarted "
                                   "and when the last container in this pod has restarted."),
    AGE,
    Column("IP", priority=1, description="podIP address allocated to the pod. Routable at least within "
                                         "the cluster. Empty if not yet allocated."),
    Column("Node", priority=1, description="NodeName indicates in which node this pod is scheduled."),
    Column("Nominated Node", priority=1,
           description="nominatedNodeName is set only when this pod preempts other pods on the node, but "
                       "it cannot be scheduled right away as preemption victims receive their graceful "
                       "termination periods."),
    Column("Readiness Gates", priority=1,
           description="If specified, all readiness gates will be evaluated for pod readiness."),
)

_TERMINAL_PHASES = ("Succeeded", "Failed")
_NODE_LOST = "NodeLost"


@dataclass
class _Restarts:
    """Summed restart counts and the latest `lastState.terminated.finishedAt` seen."""

    total: int = 0
    last: datetime | None = None

    def add(self, status: Obj) -> None:
        self.total += integer(status, "restartCount")
        finished = parse_time(get(status, "lastState", "terminated", "finishedAt"))
        if finished is not None and (self.last is None or self.last < finished):
            self.last = finished


@dataclass
class _InitScan:
    reason: str | None = None  # set when the pod is still initializing
    ready: int = 0
    restarts: _Restarts = field(default_factory=_Restarts)
    sidecar_restarts: _Restarts = field(default_factory=_Restarts)


def _is_sidecar(container: Obj | None) -> bool:
    return container is not None and get(container, "restartPolicy") == "Always"


def _init_failure(state: Obj, index: int, total: int) -> str:
    terminated, waiting = mapping(state, "terminated"), mapping(state, "waiting")
    if present(state, "terminated"):
        if reason := text(terminated, "reason"):
            return "Init:" + reason
        if signal := integer(terminated, "signal"):
            return f"Init:Signal:{signal}"
        return f"Init:ExitCode:{integer(terminated, 'exitCode')}"
    reason = text(waiting, "reason")
    if present(state, "waiting") and reason and reason != "PodInitializing":
        return "Init:" + reason
    return f"Init:{index}/{total}"


def _scan_init_containers(pod: Obj) -> _InitScan:
    specs = items(pod, "spec", "initContainers")
    by_name = {text(c, "name"): c for c in specs}
    scan = _InitScan()
    for index, status in enumerate(items(pod, "status", "initContainerStatuses")):
        sidecar = _is_sidecar(by_name.get(text(status, "name")))
        scan.restarts.add(status)
        if sidecar:
            scan.sidecar_restarts.add(status)
        state = mapping(status, "state")
        if present(state, "terminated") and integer(state, "terminated", "exitCode") == 0:
            continue
        if sidecar and get(status, "started") is True:
            scan.ready += 1 if get(status, "ready") is True else 0
            continue
        scan.reason = _init_failure(state, index, len(specs))
        break
    return scan


def _container_reason(status: Obj) -> str | None:
    """The reason an app container overrides STATUS with, or None when it does not."""
    state = mapping(status, "state")
    if present(state, "waiting") and (reason := text(state, "waiting", "reason")):
        return reason
    if not present(state, "terminated"):
        return None
    if reason := text(state, "terminated", "reason"):
        return reason
    if signal := integer(state, "terminated", "signal"):
        return f"Signal:{signal}"
    return f"ExitCode:{integer(state, 'terminated', 'exitCode')}"


def _condition_true(pod: Obj, condition_type: str) -> bool:
    """Status of the first condition of this type (upstream stops at the first match)."""
    for condition in items(pod, "status", "conditions"):
        if text(condition, "type") == condition_type:
            return text(condition, "status") == "True"
    return False


def _has_ready_condition(pod: Obj) -> bool:
    conditions = items(pod, "status", "conditions")
    return any(text(c, "type") == "Ready" and text(c, "status") == "True" for c in conditions)


def _base_reason(pod: Obj, phase: str) -> str:
    reason = text(pod, "status", "reason") or phase
    for condition in items(pod, "status", "conditions"):
        if text(condition, "type") == "PodScheduled" and text(condition, "reason") == "SchedulingGated":
            reason = "SchedulingGated"
    return reason


def _status_ready_restarts(pod: Obj) -> tuple[str, int, _Restarts]:
    phase = text(pod, "status", "phase") or "Pending"
    reason = _base_reason(pod, phase)
    scan = _scan_init_containers(pod)
    ready, restarts = scan.ready, scan.restarts
    if scan.reason is not None:
        reason = scan.reason
    if scan.reason is None or _condition_true(pod, "Initialized"):
        restarts = scan.sidecar_restarts
        has_running = False
        for status in reversed(items(pod, "status", "containerStatuses")):
            restarts.add(status)
            if (override := _container_reason(status)) is not None:
                reason = override
            elif get(status, "ready") is True and present(status, "state", "running"):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_ready_condition(pod) else "NotReady"
    if get(pod, "metadata", "deletionTimestamp") is not None:
        if text(pod, "status", "reason") == _NODE_LOST:
            reason = "Unknown"
        elif phase not in _TERMINAL_PHASES:
            reason = "Terminating"
    return reason, ready, restarts


def _restarts_cell(restarts: _Restarts, now: datetime) -> str:
    if restarts.total != 0 and restarts.last is not None:
        return f"{restarts.total} ({since(restarts.last, now)} ago)"
    return str(restarts.total)


def _readiness_gates(pod: Obj) -> str:
    gates = items(pod, "spec", "readinessGates")
    if not gates:
        return NONE
    conditions = items(pod, "status", "conditions")
    passed = 0
    for gate in gates:
        match = next((c for c in conditions if text(c, "type") == text(gate, "conditionType")), None)
        passed += 1 if match is not None and text(match, "status") == "True" else 0
    return f"{passed}/{len(gates)}"


def _pod_ip(pod: Obj) -> str:
    ips = items(pod, "status", "podIPs")
    ip = text(ips[0], "ip") if ips else text(pod, "status", "podIP")
    return ip or NONE


def pod_cells(pod: Obj, now: datetime) -> list[Cell]:
    reason, ready, restarts = _status_ready_restarts(pod)
    sidecars = sum(1 for c in items(pod, "spec", "initContainers") if _is_sidecar(c))
    total = len(items(pod, "spec", "containers")) + sidecars
    return [
        name_of(pod), f"{ready}/{total}", reason, _restarts_cell(restarts, now), age_of(pod, now),
        _pod_ip(pod), text(pod, "spec", "nodeName") or NONE,
        text(pod, "status", "nominatedNodeName") or NONE, _readiness_gates(pod),
    ]


def pod_conditions(pod: Obj) -> list[dict[str, str]]:
    """Row conditions upstream attaches to finished pods."""
    phase = text(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return []


PRINTERS = {"pods": Printer(COLUMNS, pod_cells, pod_conditions)}

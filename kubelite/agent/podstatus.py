"""Pod status as a kubelet reports it, computed purely from the API pod, the runtime's state and
what the kubelet itself knows (`KubeletView`: probe verdicts, why a container waits, the
previous instance's termination).

The kubelet owns phase, addresses, startTime, container statuses and five conditions
(PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled). Conditions other
components own (DisruptionTarget, readiness gates) are left alone: the status patch is a strategic
merge, which merges conditions by type. A condition keeps its lastTransitionTime while its status
holds, so recomputing an unchanged pod gives an identical status and `differs` is False: a pod
update event never makes the kubelet write again for nothing.

Upstream rules kept here: a container that exited and will be restarted shows `waiting` (with
the reason the kubelet gave it, e.g. CrashLoopBackOff) and its exit as `lastState`; one that will
not shows `terminated`; phase follows getPhase (init containers, sidecars, restart policy);
a terminal pod (being deleted, or finished) reports every container terminated and a
Succeeded/Failed phase; regular container statuses are sorted by name, init ones in spec order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubelite.agent.restarts import is_sidecar, restart_policy, should_restart
from kubelite.agent.runtime.interface import ContainerState, PodRuntimeStatus

Obj = dict[str, Any]

OWNED_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
OWNED_FIELDS = ("phase", "hostIP", "hostIPs", "podIP", "podIPs", "startTime", "containerStatuses",
                "initContainerStatuses")
UNKNOWN_TERMINATION = {"exitCode": 137, "reason": "ContainerStatusUnknown",
                       "message": "The container could not be located when the pod was terminated"}


@dataclass(frozen=True)
class KubeletView:
    """What the kubelet knows of the pod's containers beyond the runtime's state."""

    ready: frozenset[str] = frozenset()  # running containers whose readiness verdict is success
    unstarted: frozenset[str] = frozenset()  # running containers whose startup probe has not passed
    waiting: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (reason, message)
    last_terminated: Mapping[str, Obj] = field(default_factory=dict)  # name -> previous instance's end


# ----- container statuses ----------------------------------------------------------------------------

def terminated_state(state: ContainerState, runtime: str) -> Obj:
    out: Obj = {"exitCode": state.exit_code if state.exit_code is not None else 0,
                "reason": state.reason or ("Completed" if not state.exit_code else "Error"),
                "message": state.message, "startedAt": state.started_at, "finishedAt": state.finished_at,
                "containerID": f"{runtime}://{state.id}"}
    return {k: v for k, v in out.items() if v != ""}


def will_restart(pod: Obj, container: Obj, state: ContainerState | None, *, init: bool) -> bool:
    """upstream ShouldContainerBeRestarted (the container is not running)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if state is None or state.state == "created":
        return True
    if state.state == "running":
        return False
    if init and is_sidecar(container):
        return True
    policy = restart_policy(pod)
    if init and policy != "Never":
        return state.exit_code != 0
    return should_restart(policy, state.exit_code)


def _volume_mounts(container: Obj) -> list[Obj]:
    mounts = []
    for vm in container.get("volumeMounts") or []:
        entry: Obj = {"name": vm.get("name"), "mountPath": vm.get("mountPath")}
        if vm.get("readOnly"):
            entry.update(readOnly=True, recursiveReadOnly="Disabled")
        mounts.append(entry)
    return mounts


def container_status(pod: Obj, container: Obj, state: ContainerState | None, view: KubeletView, *,
                     runtime: str, init: bool, default_reason: str) -> Obj:
    name = str(container.get("name"))
    status: Obj = {"name": name, "image": container.get("image"), "imageID": "", "ready": False,
                   "restartCount": 0, "started": False, "state": {"waiting": {"reason": default_reason}},
                   "lastState": {}}
    if container.get("volumeMounts"):
        status["volumeMounts"] = _volume_mounts(container)
    if state is not None:
        status.update(image=state.image, imageID=state.image_id, containerID=f"{runtime}://{state.id}",
                      restartCount=state.restart_count)
        if name in view.last_terminated:
            status["lastState"] = {"terminated": dict(view.last_terminated[name])}
        if state.state == "running":
            started = name not in view.unstarted
            status.update(started=started, ready=started and name in view.ready,
                          state={"running": {"startedAt": state.started_at}})
        elif state.state == "exited":
            status["state"] = {"terminated": terminated_state(state, runtime)}
            # a completed init container counts as ready, as upstream reports it
            status["ready"] = init and not is_sidecar(container) and state.exit_code == 0
    if name in view.waiting and (state is None or state.state != "running") and \
            will_restart(pod, container, state, init=init):
        reason, message = view.waiting[name]
        if "terminated" in status["state"]:
            status["lastState"] = status["state"]
        status["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        status["ready"] = False
    return status


def container_statuses(pod: Obj, rt: PodRuntimeStatus | None, view: KubeletView, *, runtime: str,
                       init: bool, terminal: bool) -> list[Obj]:
    spec = pod.get("spec") or {}
    containers = spec.get("initContainers" if init else "containers") or []
    states = (rt.init_containers if init else rt.containers) if rt is not None else {}
    default = "PodInitializing" if spec.get("initContainers") else "ContainerCreating"
    statuses = [container_status(pod, c, states.get(str(c.get("name"))), view, runtime=runtime, init=init,
                                 default_reason=default) for c in containers]
    if terminal:
        for status in statuses:
            if "terminated" not in status["state"]:
                status.update(state={"terminated": dict(UNKNOWN_TERMINATION)}, ready=False, started=False)
    return statuses if init else sorted(statuses, key=lambda s: str(s["name"]))


# ----- phase -----------------------------------------------------------------------------------------

def _terminated(status: Obj) -> Obj | None:
    return (status.get("state") or {}).get("terminated")


def _last_terminated(status: Obj) -> Obj | None:
    return (status.get("lastState") or {}).get("terminated")


def _init_counts(spec: Obj, by_name: Mapping[str, Obj]) -> tuple[int, int, int, int, int]:
    """(pending regular init, failed regular init, pending sidecars, running sidecars, waiting sidecars)."""
    pending = failed = pending_sidecars = running_sidecars = waiting_sidecars = 0
    for c in spec.get("initContainers") or []:
        status = by_name.get(str(c.get("name")))
        state = (status or {}).get("state") or {}
        if is_sidecar(c):
            if "running" in state:
                running_sidecars += 1
                pending_sidecars += 0 if status and status.get("started") else 1
            elif "waiting" in state and status is not None and not _last_terminated(status):
                pending_sidecars += 1
                waiting_sidecars += 1
            continue
        terminated = state.get("terminated")
        if status is None or "running" in state:
            pending += 1
        elif terminated is not None:
            failed += terminated.get("exitCode", 0) != 0
        elif status is not None and (last := _last_terminated(status)) is not None:
            failed += last.get("exitCode", 0) != 0
        else:
            pending += 1
    return pending, failed, pending_sidecars, running_sidecars, waiting_sidecars


def phase(pod: Obj, statuses: list[Obj], init_statuses: list[Obj], *, terminal: bool, initialized: bool) -> str:
    """upstream getPhase."""
    spec = pod.get("spec") or {}
    policy = restart_policy(pod)
    counts = _init_counts(spec, {s["name"]: s for s in init_statuses})
    pending_init, failed_init, pending_sidecars, running, waiting = counts
    stopped = succeeded = unknown = 0
    by_name = {s["name"]: s for s in statuses}
    for c in spec.get("containers") or []:
        status = by_name.get(str(c.get("name")))
        state = (status or {}).get("state") or {}
        if status is None:
            unknown += 1
        elif "running" in state:
            running += 1
        elif (terminated := state.get("terminated")) is not None:
            stopped += 1
            succeeded += terminated.get("exitCode", 0) == 0
        elif _last_terminated(status) is not None:
            stopped += 1
        else:
            waiting += 1
    if failed_init and policy == "Never":
        return "Failed"
    if pending_init or (pending_sidecars and not initialized) or waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        if terminal or policy != "Always":
            if stopped == succeeded:
                return "Succeeded"
            if terminal or policy == "Never":
                return "Failed"
        return "Running"
    return "Pending"


# ----- conditions ------------------------------------------------------------------------------------

def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    cond: Obj = {"type": kind, "status": "True" if ok else "False"}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _names(names: list[str]) -> str:
    return f"[{' '.join(names)}]"


def initialized_condition(pod: Obj, init_statuses: list[Obj], *, pod_phase: str, regular_started: bool) -> Obj:
    spec = pod.get("spec") or {}
    if not spec.get("initContainers"):
        return _condition("Initialized", True)
    by_name = {s["name"]: s for s in init_statuses}
    incomplete = []
    for c in spec.get("initContainers") or []:
        status = by_name.get(str(c.get("name"))) or {}
        if is_sidecar(c):
            if not status.get("started"):
                incomplete.append(str(c.get("name")))
        elif (_terminated(status) or {}).get("exitCode", 1) != 0 or _terminated(status) is None:
            incomplete.append(str(c.get("name")))
    if pod_phase == "Succeeded":
        return _condition("Initialized", True, "PodCompleted")
    if regular_started or not incomplete:
        return _condition("Initialized", True)
    return _condition("Initialized", False, "ContainersNotInitialized",
                      f"containers with incomplete status: {_names(incomplete)}")


def containers_ready_condition(pod: Obj, statuses: list[Obj], init_statuses: list[Obj], *, pod_phase: str) -> Obj:
    if pod_phase in ("Succeeded", "Failed"):
        return _condition("ContainersReady", False, "PodCompleted" if pod_phase == "Succeeded" else "PodFailed")
    spec = pod.get("spec") or {}
    by_name = {s["name"]: s for s in init_statuses}
    unready = [str(c.get("name")) for c in spec.get("initContainers") or []
               if is_sidecar(c) and not (by_name.get(str(c.get("name"))) or {}).get("ready")]
    unready += [str(s["name"]) for s in _in_spec_order(spec, statuses) if not s.get("ready")]
    if unready:
        return _condition("ContainersReady", False, "ContainersNotReady",
                          f"containers with unready status: {_names(unready)}")
    return _condition("ContainersReady", True)


def _in_spec_order(spec: Obj, statuses: list[Obj]) -> list[Obj]:
    by_name = {s["name"]: s for s in statuses}
    return [by_name[n] for c in spec.get("containers") or [] if (n := c.get("name")) in by_name]


def ready_condition(pod: Obj, containers_ready: Obj) -> Obj:
    if containers_ready["status"] != "True":
        return {**containers_ready, "type": "Ready"}
    present = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    problems = []
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        kind = str(gate.get("conditionType"))
        if kind not in present:
            problems.append(f'corresponding condition of pod readiness gate "{kind}" does not exist.')
        elif present[kind] != "True":
            problems.append(f'the status of pod readiness gate "{kind}" is not "True", but {present[kind]}')
    if problems:
        return _condition("Ready", False, "ReadinessGatesNotReady", ", ".join(problems))
    return _condition("Ready", True)


# ----- the status ------------------------------------------------------------------------------------

def _addresses(status: Obj, *, host_ip: str, pod_ips: tuple[str, ...]) -> None:
    status["hostIP"], status["hostIPs"] = host_ip, [{"ip": host_ip}]
    if pod_ips:
        status["podIP"], status["podIPs"] = pod_ips[0], [{"ip": ip} for ip in pod_ips]


def desired_status(pod: Obj, rt: PodRuntimeStatus | None, view: KubeletView | None = None, *, runtime: str,
                   host_ip: str, now: str, terminal: bool = False, waiting_reason: str = "") -> Obj:
    """The kubelet-owned part of the pod's status. `terminal`: every container has been stopped
    and will not run again (a pod being deleted, or one that finished); `waiting_reason`: why
    there is no sandbox yet."""
    view = view or KubeletView()
    current = pod.get("status") or {}
    status: Obj = {"startTime": current.get("startTime") or now}
    statuses = container_statuses(pod, rt, view, runtime=runtime, init=False, terminal=terminal)
    init_statuses = container_statuses(pod, rt, view, runtime=runtime, init=True, terminal=terminal)
    if waiting_reason and rt is None and not terminal:
        for s in statuses:
            s["state"] = {"waiting": {"reason": waiting_reason}}
    regular_started = bool(rt and rt.containers)
    status["phase"] = phase(pod, statuses, init_statuses, terminal=terminal, initialized=regular_started)
    if terminal and status["phase"] not in ("Succeeded", "Failed"):
        status["phase"] = "Failed"
    _addresses(status, host_ip=host_ip, pod_ips=rt.sandbox.ips if rt else _api_ips(current))
    status["containerStatuses"] = statuses
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    containers_ready = containers_ready_condition(pod, statuses, init_statuses, pod_phase=status["phase"])
    status["conditions"] = [
        _condition("PodReadyToStartContainers", rt is not None and not terminal),
        initialized_condition(pod, init_statuses, pod_phase=status["phase"], regular_started=regular_started),
        ready_condition(pod, containers_ready),
        containers_ready,
        _condition("PodScheduled", True),
    ]
    return status


def _api_ips(current: Obj) -> tuple[str, ...]:
    """A pod whose sandbox is gone keeps the addresses it reported (as upstream's status does)."""
    return tuple(str(p.get("ip")) for p in current.get("podIPs") or [] if p.get("ip"))


def with_transition_times(desired: Obj, current: Obj, now: str) -> Obj:
    """`desired` with each owned condition's lastTransitionTime carried over while its status holds."""
    before = {c.get("type"): c for c in current.get("conditions") or [] if isinstance(c, dict)}
    conditions = []
    for cond in desired.get("conditions") or []:
        old = before.get(cond["type"]) or {}
        same = old.get("status") == cond["status"]
        conditions.append({**cond, "lastTransitionTime": (old.get("lastTransitionTime") if same else None) or now})
    return {**desired, "conditions": conditions}


def differs(desired: Obj, current: Obj) -> bool:
    """Whether the API status differs from the kubelet's in any field the kubelet owns."""
    if any(desired.get(f) != current.get(f) for f in OWNED_FIELDS if f in desired or f in current):
        return True
    ours = {c["type"]: c for c in desired.get("conditions") or []}
    theirs = {c.get("type"): c for c in current.get("conditions") or [] if c.get("type") in ours}
    return any(_comparable(ours[k]) != _comparable(theirs.get(k) or {}) for k in ours)


def _comparable(cond: Obj) -> tuple[Any, ...]:
    return (cond.get("status"), cond.get("reason") or "", cond.get("message") or "", cond.get("lastTransitionTime"))


def status_patch(desired: Obj, current: Obj) -> Obj:
    """A strategic merge patch for pods/status: conditions merge by type (in upstream's order, other
    components' conditions kept); container statuses are atomic lists, replaced whole."""
    status = dict(desired)
    # a merged condition keeps the fields the patch leaves out: clear a stale reason and message
    status["conditions"] = [{"reason": None, "message": None, **c} for c in desired.get("conditions") or []]
    ours = [c["type"] for c in desired.get("conditions") or []]
    others = [c.get("type") for c in current.get("conditions") or [] if c.get("type") not in ours]
    status["$setElementOrder/conditions"] = [{"type": t} for t in [*ours, *others]]
    for name in ("podIPs", "hostIPs"):  # lists merged by ip: a new sandbox's addresses replace the old
        if name in status:
            status[name] = [{"$patch": "replace"}, *status[name]]
    return {"status": status}

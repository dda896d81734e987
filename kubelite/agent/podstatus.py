"""Pod status as a kubelet reports it, computed purely from the API pod and the runtime's state.

The kubelet owns phase, addresses, startTime, container statuses and five conditions
(PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled). Conditions other
components own (DisruptionTarget, readiness gates) are left alone: the status patch is a strategic
merge, which merges conditions by type. A condition keeps its lastTransitionTime while its status
holds, so recomputing an unchanged pod gives an identical status and `differs` is False: a pod
update event never makes the kubelet write again for nothing.
"""

from __future__ import annotations

from typing import Any

from kubelite.agent.runtime.interface import ContainerState, PodRuntimeStatus

Obj = dict[str, Any]

OWNED_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
OWNED_FIELDS = ("phase", "hostIP", "hostIPs", "podIP", "podIPs", "startTime", "containerStatuses",
                "initContainerStatuses")


def _names(spec: Obj, field: str) -> list[str]:
    return [str(c.get("name")) for c in spec.get(field) or [] if isinstance(c, dict)]


def _waiting(container: Obj, reason: str) -> Obj:
    return {"name": container.get("name"), "image": container.get("image"), "imageID": "", "ready": False,
            "restartCount": 0, "started": False, "state": {"waiting": {"reason": reason}}, "lastState": {}}


def _from_runtime(state: ContainerState, runtime: str, *, ready: bool, init: bool) -> Obj:
    container_id = f"{runtime}://{state.id}"
    status: Obj = {"name": state.name, "image": state.image, "imageID": state.image_id,
                   "containerID": container_id, "restartCount": state.restart_count, "lastState": {}}
    if state.state == "running":
        status.update(ready=ready, started=True, state={"running": {"startedAt": state.started_at}})
    elif state.state == "exited":
        terminated = {"exitCode": state.exit_code or 0, "reason": state.reason or "Completed",
                      "startedAt": state.started_at, "finishedAt": state.finished_at, "containerID": container_id}
        # a completed init container counts as ready, as upstream reports it
        status.update(ready=init and state.exit_code == 0, started=False, state={"terminated": terminated})
    else:
        status.update(ready=False, started=False, state={"waiting": {"reason": "ContainerCreating"}})
    return status


def _container_statuses(spec: Obj, field: str, states: dict[str, ContainerState], runtime: str, *,
                        ready_names: set[str], init: bool) -> list[Obj]:
    result = []
    for container in spec.get(field) or []:
        state = states.get(str(container.get("name")))
        if state is None:
            result.append(_waiting(container, "PodInitializing" if not init and spec.get("initContainers")
                                   else "ContainerCreating"))
        else:
            result.append(_from_runtime(state, runtime, ready=state.name in ready_names, init=init))
    return result


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    cond: Obj = {"type": kind, "status": "True" if ok else "False"}
    if not ok and reason:
        cond["reason"] = reason
    if not ok and message:
        cond["message"] = message
    return cond


def _readiness_gates(pod: Obj) -> list[str]:
    gates = [str(g.get("conditionType")) for g in (pod.get("spec") or {}).get("readinessGates") or []]
    present = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    return [g for g in gates if present.get(g) != "True"]


def _conditions(pod: Obj, statuses: list[Obj], init_statuses: list[Obj], *, sandbox: bool,
                terminal: bool) -> list[Obj]:
    spec = pod.get("spec") or {}
    unready = [str(s["name"]) for s in statuses if not s.get("ready")]
    uninitialized = [str(s["name"]) for s, c in zip(init_statuses, spec.get("initContainers") or [], strict=False)
                     if not s.get("ready") and not (c.get("restartPolicy") == "Always" and s.get("started"))]
    not_ready = "PodCompleted" if terminal else "ContainersNotReady"
    unready_msg = "" if terminal else f"containers with unready status: [{' '.join(unready)}]"
    ready = _condition("Ready", not unready and not terminal, not_ready, unready_msg)
    gates = _readiness_gates(pod)
    if ready["status"] == "True" and gates:
        ready = _condition("Ready", False, "ReadinessGatesNotReady",
                           f'corresponding condition of pod readiness gate "{gates[0]}" does not exist.')
    return [
        _condition("PodReadyToStartContainers", sandbox and not terminal),
        _condition("Initialized", not uninitialized or terminal, "ContainersNotInitialized",
                   f"containers with incomplete status: [{' '.join(uninitialized)}]"),
        ready,
        _condition("ContainersReady", not unready and not terminal, not_ready, unready_msg),
        _condition("PodScheduled", True),
    ]


def _addresses(status: Obj, *, host_ip: str, pod_ips: tuple[str, ...]) -> None:
    status["hostIP"], status["hostIPs"] = host_ip, [{"ip": host_ip}]
    if pod_ips:
        status["podIP"], status["podIPs"] = pod_ips[0], [{"ip": ip} for ip in pod_ips]


def desired_status(pod: Obj, runtime_status: PodRuntimeStatus | None, *, runtime: str, host_ip: str,
                   ready_names: set[str], now: str, terminal: bool = False, waiting_reason: str = "") -> Obj:
    """The kubelet-owned part of the pod's status. `terminal`: every container has been stopped
    (a pod being deleted); `waiting_reason`: why there is no sandbox yet."""
    spec, current = pod.get("spec") or {}, pod.get("status") or {}
    rt = runtime_status
    init_states = rt.init_containers if rt else {}
    states = rt.containers if rt else {}
    status: Obj = {"startTime": current.get("startTime") or now}
    statuses = _container_statuses(spec, "containers", states, runtime, ready_names=ready_names, init=False)
    init_statuses = _container_statuses(spec, "initContainers", init_states, runtime, ready_names=ready_names,
                                        init=True)
    if waiting_reason and rt is None:
        statuses = [_waiting(c, "ContainerCreating") for c in spec.get("containers") or []]
    if terminal:
        status["phase"] = "Failed" if any(_failed(s) for s in statuses) else "Succeeded"
    elif any("running" in s["state"] for s in statuses):
        status["phase"] = "Running"
    else:
        status["phase"] = "Pending"
    _addresses(status, host_ip=host_ip, pod_ips=rt.sandbox.ips if rt else ())
    status["containerStatuses"] = statuses
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["conditions"] = _conditions(pod, statuses, init_statuses, sandbox=rt is not None, terminal=terminal)
    return status


def _failed(status: Obj) -> bool:
    terminated = (status.get("state") or {}).get("terminated") or {}
    return int(terminated.get("exitCode") or 0) != 0


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
    return {"status": status}

"""What a pod's containers need next (upstream computePodActions), pure.

Given the pod, the runtime's state of its sandbox and the probe verdicts, `compute` says which
containers to kill (a failed liveness/startup probe) and which to start, in order:
- init phase (no regular container created yet): init containers one at a time, in order. A
  regular init container must exit 0 before the next starts; one that failed is started again
  unless the pod's restartPolicy is Never (then the pod has failed). A sidecar (restartPolicy
  Always) must be running and started (its startup probe passed) before the next one starts;
- then the sidecars are kept running (restarted whenever they exit) and the regular containers
  are started, and restarted after an exit as the pod's restartPolicy says;
- once every regular container exited for good the pod is `done` (its sidecars are stopped).
Back-off is not decided here: a container listed to start may still have to wait
(CrashLoopBackOff), which the kubelet checks when it starts it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubelite.agent.restarts import is_sidecar, restart_policy, should_restart
from kubelite.agent.runtime.interface import ContainerState, PodRuntimeStatus

Obj = dict[str, Any]
ProbeFailed = Callable[[str, str], str]  # (name, container id) -> "liveness" / "startup" / ""
Started = Callable[[str, str], bool]  # (name, container id) -> startup probe passed (or none)


@dataclass(frozen=True)
class Kill:
    name: str
    init: bool
    message: str  # the Killing event's message
    probe: str  # the probe that failed: its terminationGracePeriodSeconds applies


@dataclass(frozen=True)
class Start:
    container: Obj
    init: bool

    @property
    def name(self) -> str:
        return str(self.container.get("name"))


@dataclass
class PodActions:
    kill: list[Kill] = field(default_factory=list)
    start: list[Start] = field(default_factory=list)
    failed: bool = False  # an init container failed under restartPolicy Never
    done: bool = False  # every regular container exited and none will run again


def _running_checks(container: Obj, state: ContainerState, *, init: bool, policy: str, failed: ProbeFailed,
                    actions: PodActions) -> bool:
    """Kill (and maybe restart) a running container whose liveness/startup probe failed; True
    when it was."""
    name = str(container.get("name"))
    kind = failed(name, state.id)
    if not kind:
        return False
    restart = init or policy != "Never"
    message = f"Container {name} failed {kind} probe" + (", will be restarted" if restart else "")
    actions.kill.append(Kill(name, init, message, kind))
    if restart:
        actions.start.append(Start(container, init))
    return True


def _init_phase(pod: Obj, rt: PodRuntimeStatus, actions: PodActions, *, failed: ProbeFailed,
                started: Started) -> bool:
    """Work on the init containers; True once all of them are done."""
    policy = restart_policy(pod)
    for container in (pod.get("spec") or {}).get("initContainers") or []:
        name = str(container.get("name"))
        state = rt.init_containers.get(name)
        if state is None or state.state == "created":
            actions.start.append(Start(container, True))
            return False
        if is_sidecar(container):
            if state.state != "running":
                actions.start.append(Start(container, True))
                return False
            if _running_checks(container, state, init=True, policy=policy, failed=failed, actions=actions) or \
                    not started(name, state.id):
                return False
            continue
        if state.state == "running":
            return False
        if state.exit_code == 0:
            continue
        if policy == "Never":
            actions.failed = True
        else:
            actions.start.append(Start(container, True))
        return False
    return True


def compute(pod: Obj, rt: PodRuntimeStatus, *, failed: ProbeFailed, started: Started) -> PodActions:
    actions = PodActions()
    spec = pod.get("spec") or {}
    policy = restart_policy(pod)
    if not rt.containers and not _init_phase(pod, rt, actions, failed=failed, started=started):
        return actions
    for container in spec.get("initContainers") or []:
        state = rt.init_containers.get(str(container.get("name")))
        if not is_sidecar(container):
            continue
        if state is None or state.state != "running":
            actions.start.append(Start(container, True))
        else:
            _running_checks(container, state, init=True, policy=policy, failed=failed, actions=actions)
    finished = 0
    for container in spec.get("containers") or []:
        state = rt.containers.get(str(container.get("name")))
        if state is None or state.state == "created":
            actions.start.append(Start(container, False))
        elif state.state == "running":
            _running_checks(container, state, init=False, policy=policy, failed=failed, actions=actions)
        elif should_restart(policy, state.exit_code):
            actions.start.append(Start(container, False))
        else:
            finished += 1
    actions.done = finished == len(spec.get("containers") or []) and finished > 0
    if actions.done:  # the sidecars go with the pod, they are not restarted any more
        actions.start = [s for s in actions.start if not s.init]
    return actions

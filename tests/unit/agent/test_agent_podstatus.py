"""Pod status as the kubelet reports it, from the API pod and the runtime's state (pure)."""

from __future__ import annotations

from typing import Any

from kubelite.agent import podstatus
from kubelite.agent.runtime.interface import ContainerState, PodRuntimeStatus, Sandbox
from kubelite.objects.strategic import strategic_merge_patch

Obj = dict[str, Any]
T0, T1 = "2025-01-01T00:00:00Z", "2025-01-01T00:00:09Z"


def pod(**spec: Any) -> Obj:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [{"name": "app", "image": "nginx"}], **spec},
            "status": {"phase": "Pending", "qosClass": "BestEffort",
                       "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": T0}]}}


def runtime(*, init: bool = False, running: bool = True) -> PodRuntimeStatus:
    rt = PodRuntimeStatus(Sandbox("sb", "u1", ("198.18.0.2",), T0))
    state = "running" if running else "exited"
    rt.containers["app"] = ContainerState("app", "c1", "docker.io/library/nginx:latest", "docker.io/library/nginx@sha256:x",
                                          state, T0, "" if running else T1, None if running else 0,
                                          "" if running else "Completed")
    if init:
        rt.init_containers["setup"] = ContainerState("setup", "i1", "docker.io/library/busybox:latest", "b@sha256:y",
                                                     "exited", T0, T0, 0, "Completed")
    return rt


def desired(p: Obj, rt: PodRuntimeStatus | None, **kw: Any) -> Obj:
    kw.setdefault("ready_names", {"app"})
    return podstatus.desired_status(p, rt, runtime="fake", host_ip="198.19.128.16", now=T1, **kw)


def conditions(status: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in status["conditions"]}


def test_running_pod() -> None:
    status = desired(pod(), runtime())
    assert status["phase"] == "Running"
    assert (status["podIP"], status["podIPs"], status["hostIP"], status["hostIPs"]) == (
        "198.18.0.2", [{"ip": "198.18.0.2"}], "198.19.128.16", [{"ip": "198.19.128.16"}])
    assert [c["type"] for c in status["conditions"]] == list(podstatus.OWNED_CONDITIONS)
    assert all(c["status"] == "True" for c in status["conditions"])
    (container,) = status["containerStatuses"]
    assert container == {"name": "app", "image": "docker.io/library/nginx:latest",
                         "imageID": "docker.io/library/nginx@sha256:x", "containerID": "fake://c1",
                         "restartCount": 0, "lastState": {}, "ready": True, "started": True,
                         "state": {"running": {"startedAt": T0}}}
    assert status["startTime"] == T1


def test_not_ready_yet_and_init_containers_completed() -> None:
    status = desired(pod(initContainers=[{"name": "setup", "image": "busybox"}]), runtime(init=True),
                     ready_names=set())
    c = conditions(status)
    assert (c["Ready"]["status"], c["Ready"]["reason"], c["Ready"]["message"]) == (
        "False", "ContainersNotReady", "containers with unready status: [app]")
    assert c["ContainersReady"]["status"] == "False" and c["Initialized"]["status"] == "True"
    (init,) = status["initContainerStatuses"]
    assert (init["ready"], init["started"], init["state"]["terminated"]["reason"]) == (True, False, "Completed")


def test_waiting_for_a_sandbox() -> None:
    status = desired(pod(), None, waiting_reason="ContainerCreating", ready_names=set())
    assert status["phase"] == "Pending" and "podIP" not in status
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert conditions(status)["PodReadyToStartContainers"]["status"] == "False"


def test_terminated_pod_is_succeeded_and_not_ready() -> None:
    status = desired(pod(), runtime(running=False), terminal=True, ready_names=set())
    assert status["phase"] == "Succeeded"
    c = conditions(status)
    assert (c["Ready"]["status"], c["Ready"]["reason"]) == ("False", "PodCompleted")
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_readiness_gates_hold_ready_back() -> None:
    p = pod(readinessGates=[{"conditionType": "example.com/lb"}])
    assert conditions(desired(p, runtime()))["Ready"]["reason"] == "ReadinessGatesNotReady"
    p["status"]["conditions"].append({"type": "example.com/lb", "status": "True"})
    assert conditions(desired(p, runtime()))["Ready"]["status"] == "True"


def test_recomputing_an_unchanged_pod_writes_nothing() -> None:
    p = pod()
    first = podstatus.with_transition_times(desired(p, runtime()), p["status"], T0)
    assert conditions(first)["PodScheduled"]["lastTransitionTime"] == T0  # kept from the scheduler's
    p["status"].update(first)
    p["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True"})  # someone else's
    again = podstatus.with_transition_times(desired(p, runtime()), p["status"], T1)
    assert not podstatus.differs(again, p["status"])
    unready = podstatus.with_transition_times(desired(p, runtime(), ready_names=set()), p["status"], T1)
    assert podstatus.differs(unready, p["status"])
    assert conditions(unready)["Ready"]["lastTransitionTime"] == T1
    assert conditions(unready)["Initialized"]["lastTransitionTime"] == T0


def test_status_patch_keeps_other_components_conditions() -> None:
    p = pod()
    p["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True", "reason": "X"})
    status = podstatus.with_transition_times(desired(p, runtime()), p["status"], T1)
    patched = strategic_merge_patch(p, podstatus.status_patch(status, p["status"]), "io.k8s.api.core.v1.Pod")
    types = [c["type"] for c in patched["status"]["conditions"]]
    assert types == [*podstatus.OWNED_CONDITIONS, "DisruptionTarget"]
    assert patched["status"]["qosClass"] == "BestEffort" and patched["status"]["phase"] == "Running"


def test_status_patch_clears_a_stale_reason_when_a_condition_turns_true() -> None:
    p = pod()
    unready = podstatus.with_transition_times(desired(p, runtime(), ready_names=set()), p["status"], T0)
    p = strategic_merge_patch(p, podstatus.status_patch(unready, p["status"]), "io.k8s.api.core.v1.Pod")
    assert conditions(p["status"])["Ready"]["reason"] == "ContainersNotReady"
    ready = podstatus.with_transition_times(desired(p, runtime()), p["status"], T1)
    p = strategic_merge_patch(p, podstatus.status_patch(ready, p["status"]), "io.k8s.api.core.v1.Pod")
    assert conditions(p["status"])["Ready"] == {"type": "Ready", "status": "True", "lastTransitionTime": T1}
    assert not podstatus.differs(podstatus.with_transition_times(desired(p, runtime()), p["status"], T1), p["status"])

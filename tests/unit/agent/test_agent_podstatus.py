"""Pod status as the kubelet reports it, from the API pod, the runtime's state and the kubelet's
view (pure): container states and reasons, phase by restart policy, conditions, writes."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.agent import podstatus
from kubelite.agent.podstatus import KubeletView
from kubelite.agent.runtime.interface import ContainerState, PodRuntimeStatus, Sandbox
from kubelite.objects.strategic import strategic_merge_patch

Obj = dict[str, Any]
T0, T1 = "2025-01-01T00:00:00Z", "2025-01-01T00:00:09Z"
READY = KubeletView(ready=frozenset({"app", "side"}))


def pod(**spec: Any) -> Obj:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [{"name": "app", "image": "nginx"}], **spec},
            "status": {"phase": "Pending", "qosClass": "BestEffort",
                       "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": T0}]}}


def state(name: str = "app", kind: str = "running", code: int | None = None, *, restarts: int = 0,
          reason: str = "") -> ContainerState:
    exited = kind == "exited"
    return ContainerState(name, f"id-{name}-{restarts}", f"docker.io/library/{name}:latest", f"{name}@sha256:x", kind,  # type: ignore[arg-type]
                          T0, T1 if exited else "", code, reason or ("" if not exited else "Completed" if code == 0
                                                                    else "Error"), restarts)


def runtime(*containers: ContainerState, init: tuple[ContainerState, ...] = ()) -> PodRuntimeStatus:
    rt = PodRuntimeStatus(Sandbox("sb", "u1", ("198.18.0.2",), T0))
    rt.containers.update({c.name: c for c in containers})
    rt.init_containers.update({c.name: c for c in init})
    return rt


def desired(p: Obj, rt: PodRuntimeStatus | None, view: KubeletView = READY, **kw: Any) -> Obj:
    return podstatus.desired_status(p, rt, view, runtime="fake", host_ip="198.19.128.16", now=T1, **kw)


def conditions(status: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in status["conditions"]}


def test_running_pod() -> None:
    status = desired(pod(), runtime(state()))
    assert status["phase"] == "Running"
    assert (status["podIP"], status["podIPs"], status["hostIP"], status["hostIPs"]) == (
        "198.18.0.2", [{"ip": "198.18.0.2"}], "198.19.128.16", [{"ip": "198.19.128.16"}])
    assert [c["type"] for c in status["conditions"]] == list(podstatus.OWNED_CONDITIONS)
    assert all(c["status"] == "True" for c in status["conditions"])
    (container,) = status["containerStatuses"]
    assert container == {"name": "app", "image": "docker.io/library/app:latest", "imageID": "app@sha256:x",
                         "containerID": "fake://id-app-0", "restartCount": 0, "lastState": {}, "ready": True,
                         "started": True, "state": {"running": {"startedAt": T0}}}
    assert status["startTime"] == T1


def test_not_ready_yet_and_init_containers_completed() -> None:
    status = desired(pod(initContainers=[{"name": "setup", "image": "busybox"}]),
                     runtime(state(), init=(state("setup", "exited", 0),)), KubeletView())
    c = conditions(status)
    assert (c["Ready"]["status"], c["Ready"]["reason"], c["Ready"]["message"]) == (
        "False", "ContainersNotReady", "containers with unready status: [app]")
    assert c["ContainersReady"]["status"] == "False" and c["Initialized"]["status"] == "True"
    (init,) = status["initContainerStatuses"]
    assert (init["ready"], init["started"], init["state"]["terminated"]["reason"]) == (True, False, "Completed")


def test_unstarted_container_is_neither_started_nor_ready() -> None:
    status = desired(pod(), runtime(state()), KubeletView(ready=frozenset({"app"}), unstarted=frozenset({"app"})))
    (container,) = status["containerStatuses"]
    assert (container["started"], container["ready"]) == (False, False)
    assert status["phase"] == "Running"


def test_waiting_for_a_sandbox() -> None:
    status = desired(pod(), None, KubeletView(), waiting_reason="ContainerCreating")
    assert status["phase"] == "Pending" and "podIP" not in status
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert conditions(status)["PodReadyToStartContainers"]["status"] == "False"


def test_init_containers_pending_show_pod_initializing() -> None:
    p = pod(initContainers=[{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}])
    status = desired(p, runtime(init=(state("a"),)), KubeletView())
    assert status["phase"] == "Pending"
    assert [s["state"] for s in status["initContainerStatuses"]] == [
        {"running": {"startedAt": T0}}, {"waiting": {"reason": "PodInitializing"}}]
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    c = conditions(status)["Initialized"]
    assert (c["status"], c["reason"], c["message"]) == ("False", "ContainersNotInitialized",
                                                        "containers with incomplete status: [a b]")


def test_crashing_container_waits_with_its_reason_and_last_state() -> None:
    crash = ("CrashLoopBackOff", "back-off 10s restarting failed container=app pod=p_ns(u1)")
    view = KubeletView(waiting={"app": crash}, last_terminated={"app": {"exitCode": 1, "reason": "Error"}})
    status = desired(pod(), runtime(state("app", "exited", 2, restarts=1)), view)
    (container,) = status["containerStatuses"]
    assert container["state"] == {"waiting": {"reason": crash[0], "message": crash[1]}}
    assert container["lastState"]["terminated"]["exitCode"] == 2  # the instance that just exited
    assert container["restartCount"] == 1 and not container["ready"]
    assert status["phase"] == "Running"  # restartPolicy Always: restarting
    assert conditions(status)["Ready"]["reason"] == "ContainersNotReady"


def test_exited_container_without_a_reason_shows_terminated_with_previous_last_state() -> None:
    view = KubeletView(last_terminated={"app": {"exitCode": 1, "reason": "Error"}})
    status = desired(pod(), runtime(state("app", "exited", 137, restarts=1, reason="OOMKilled")), view)
    (container,) = status["containerStatuses"]
    assert container["state"]["terminated"]["reason"] == "OOMKilled"
    assert container["lastState"] == {"terminated": {"exitCode": 1, "reason": "Error"}}


def test_never_started_container_shows_the_start_failure() -> None:
    view = KubeletView(waiting={"app": ("CreateContainerConfigError", "couldn't find key k in ConfigMap ns/c")})
    status = desired(pod(), runtime(), view)
    assert status["containerStatuses"][0]["state"] == {"waiting": {
        "reason": "CreateContainerConfigError", "message": "couldn't find key k in ConfigMap ns/c"}}
    assert status["phase"] == "Pending"


@pytest.mark.parametrize(("policy", "codes", "phase"), [
    ("Always", [0], "Running"), ("Always", [1], "Running"),
    ("OnFailure", [0], "Succeeded"), ("OnFailure", [1], "Running"), ("OnFailure", [0, 1], "Running"),
    ("Never", [0], "Succeeded"), ("Never", [1], "Failed"), ("Never", [0, 3], "Failed"),
    ("Never", [0, None], "Running"), ("OnFailure", [0, None], "Running"),
])
def test_phase_by_restart_policy(policy: str, codes: list[int | None], phase: str) -> None:
    names = [f"c{i}" for i in range(len(codes))]
    p = pod(restartPolicy=policy, containers=[{"name": n, "image": "x"} for n in names])
    states = [state(n, "running") if code is None else state(n, "exited", code) for n, code in zip(names, codes,
                                                                                                  strict=True)]
    assert desired(p, runtime(*states), KubeletView())["phase"] == phase


@pytest.mark.parametrize(("policy", "init_code", "phase"), [
    ("Never", 1, "Failed"), ("OnFailure", 1, "Pending"), ("Always", 1, "Pending"), ("Never", 0, "Pending"),
])
def test_phase_with_a_failed_or_finished_init_container(policy: str, init_code: int, phase: str) -> None:
    p = pod(restartPolicy=policy, initContainers=[{"name": "setup", "image": "x"}])
    status = desired(p, runtime(init=(state("setup", "exited", init_code),)), KubeletView())
    assert status["phase"] == phase


def test_sidecar_must_start_before_the_pod_is_initialized() -> None:
    p = pod(initContainers=[{"name": "side", "image": "x", "restartPolicy": "Always"}])
    waiting = desired(p, runtime(init=(state("side"),)), KubeletView(unstarted=frozenset({"side"})))
    assert waiting["phase"] == "Pending" and conditions(waiting)["Initialized"]["status"] == "False"
    running = desired(p, runtime(state(), init=(state("side"),)))
    assert running["phase"] == "Running" and conditions(running)["Ready"]["status"] == "True"
    unready = desired(p, runtime(state(), init=(state("side"),)), KubeletView(ready=frozenset({"app"})))
    assert conditions(unready)["ContainersReady"]["message"] == "containers with unready status: [side]"


def test_finished_pod_with_a_stopped_sidecar_succeeds() -> None:
    p = pod(restartPolicy="Never", initContainers=[{"name": "side", "image": "x", "restartPolicy": "Always"}])
    status = desired(p, runtime(state("app", "exited", 0), init=(state("side", "exited", 137),)), KubeletView())
    assert status["phase"] == "Succeeded"
    c = conditions(status)
    assert (c["Ready"]["reason"], c["Initialized"]["reason"]) == ("PodCompleted", "PodCompleted")


def test_terminated_pod_is_succeeded_and_not_ready() -> None:
    status = desired(pod(), runtime(state("app", "exited", 0)), terminal=True)
    assert status["phase"] == "Succeeded"
    c = conditions(status)
    assert (c["Ready"]["status"], c["Ready"]["reason"]) == ("False", "PodCompleted")
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_terminated_pod_with_a_killed_or_never_started_container_failed() -> None:
    p = pod(containers=[{"name": "app", "image": "x"}, {"name": "late", "image": "x"}])
    status = desired(p, runtime(state("app", "exited", 143)), terminal=True)
    assert status["phase"] == "Failed"
    late = status["containerStatuses"][1]
    assert late["state"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert conditions(status)["Ready"]["reason"] == "PodFailed"


def test_statuses_are_sorted_by_name_and_list_volume_mounts() -> None:
    p = pod(containers=[{"name": "zeta", "image": "x"},
                        {"name": "alpha", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v",
                                                                          "readOnly": True}]}])
    status = desired(p, runtime(), KubeletView())
    assert [s["name"] for s in status["containerStatuses"]] == ["alpha", "zeta"]
    assert status["containerStatuses"][0]["volumeMounts"] == [
        {"name": "v", "mountPath": "/v", "readOnly": True, "recursiveReadOnly": "Disabled"}]


def test_readiness_gates_hold_ready_back() -> None:
    p = pod(readinessGates=[{"conditionType": "example.com/lb"}])
    ready = conditions(desired(p, runtime(state())))["Ready"]
    assert (ready["reason"], ready["message"]) == (
        "ReadinessGatesNotReady", 'corresponding condition of pod readiness gate "example.com/lb" does not exist.')
    p["status"]["conditions"].append({"type": "example.com/lb", "status": "False"})
    assert "is not \"True\", but False" in conditions(desired(p, runtime(state())))["Ready"]["message"]
    p["status"]["conditions"][-1]["status"] = "True"
    assert conditions(desired(p, runtime(state())))["Ready"]["status"] == "True"


def test_recomputing_an_unchanged_pod_writes_nothing() -> None:
    p = pod()
    first = podstatus.with_transition_times(desired(p, runtime(state())), p["status"], T0)
    assert conditions(first)["PodScheduled"]["lastTransitionTime"] == T0  # kept from the scheduler's
    p["status"].update(first)
    p["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True"})  # someone else's
    again = podstatus.with_transition_times(desired(p, runtime(state())), p["status"], T1)
    assert not podstatus.differs(again, p["status"])
    unready = podstatus.with_transition_times(desired(p, runtime(state()), KubeletView()), p["status"], T1)
    assert podstatus.differs(unready, p["status"])
    assert conditions(unready)["Ready"]["lastTransitionTime"] == T1
    assert conditions(unready)["Initialized"]["lastTransitionTime"] == T0


def test_status_patch_keeps_other_components_conditions() -> None:
    p = pod()
    p["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True", "reason": "X"})
    status = podstatus.with_transition_times(desired(p, runtime(state())), p["status"], T1)
    patched = strategic_merge_patch(p, podstatus.status_patch(status, p["status"]), "io.k8s.api.core.v1.Pod")
    types = [c["type"] for c in patched["status"]["conditions"]]
    assert types == [*podstatus.OWNED_CONDITIONS, "DisruptionTarget"]
    assert patched["status"]["qosClass"] == "BestEffort" and patched["status"]["phase"] == "Running"


def test_status_patch_clears_a_stale_reason_when_a_condition_turns_true() -> None:
    p = pod()
    unready = podstatus.with_transition_times(desired(p, runtime(state()), KubeletView()), p["status"], T0)
    p = strategic_merge_patch(p, podstatus.status_patch(unready, p["status"]), "io.k8s.api.core.v1.Pod")
    assert conditions(p["status"])["Ready"]["reason"] == "ContainersNotReady"
    ready = podstatus.with_transition_times(desired(p, runtime(state())), p["status"], T1)
    p = strategic_merge_patch(p, podstatus.status_patch(ready, p["status"]), "io.k8s.api.core.v1.Pod")
    assert conditions(p["status"])["Ready"] == {"type": "Ready", "status": "True", "lastTransitionTime": T1}
    assert not podstatus.differs(podstatus.with_transition_times(desired(p, runtime(state())), p["status"], T1),
                                 p["status"])

"""What a pod's containers need next (pure): init order, sidecars, restart policy, liveness kills."""

from __future__ import annotations

from typing import Any

from kubelite.agent import podactions
from kubelite.agent.runtime.interface import ContainerState, PodRuntimeStatus, Sandbox

Obj = dict[str, Any]


def pod(policy: str = "Always", init: list[Obj] | None = None, names: tuple[str, ...] = ("app",)) -> Obj:
    return {"metadata": {"uid": "u"}, "spec": {"restartPolicy": policy, "initContainers": init or [],
                                                "containers": [{"name": n} for n in names]}}


def st(name: str, kind: str = "running", code: int | None = None) -> ContainerState:
    return ContainerState(name, f"id-{name}", "img", "img@x", kind, exit_code=code)  # type: ignore[arg-type]


def rt(*containers: ContainerState, init: tuple[ContainerState, ...] = ()) -> PodRuntimeStatus:
    status = PodRuntimeStatus(Sandbox("sb", "u", (), ""))
    status.containers.update({c.name: c for c in containers})
    status.init_containers.update({c.name: c for c in init})
    return status


def compute(p: Obj, status: PodRuntimeStatus, *, failed: dict[str, str] | None = None,
            unstarted: set[str] | None = None) -> podactions.PodActions:
    return podactions.compute(p, status, failed=lambda n, cid: (failed or {}).get(n, ""),
                              started=lambda n, cid: n not in (unstarted or set()))


def starts(actions: podactions.PodActions) -> list[tuple[str, bool]]:
    return [(s.name, s.init) for s in actions.start]


def test_fresh_pod_starts_its_containers() -> None:
    assert starts(compute(pod(names=("a", "b")), rt())) == [("a", False), ("b", False)]


def test_init_containers_run_one_at_a_time_in_order() -> None:
    p = pod(init=[{"name": "i1"}, {"name": "i2"}])
    assert starts(compute(p, rt())) == [("i1", True)]
    assert starts(compute(p, rt(init=(st("i1"),)))) == []  # running: wait for it
    assert starts(compute(p, rt(init=(st("i1", "exited", 0),)))) == [("i2", True)]
    assert starts(compute(p, rt(init=(st("i1", "exited", 0), st("i2", "exited", 0))))) == [("app", False)]


def test_failed_init_container_restarts_unless_never() -> None:
    status = rt(init=(st("i1", "exited", 1),))
    assert starts(compute(pod("OnFailure", [{"name": "i1"}]), status)) == [("i1", True)]
    assert starts(compute(pod("Always", [{"name": "i1"}]), status)) == [("i1", True)]
    never = compute(pod("Never", [{"name": "i1"}]), status)
    assert never.failed and starts(never) == []


def test_sidecars_must_be_started_before_the_next_and_are_kept_running() -> None:
    p = pod(init=[{"name": "side", "restartPolicy": "Always"}, {"name": "i2"}])
    assert starts(compute(p, rt())) == [("side", True)]
    assert starts(compute(p, rt(init=(st("side"),)), unstarted={"side"})) == []
    assert starts(compute(p, rt(init=(st("side"),)))) == [("i2", True)]
    running = rt(st("app"), init=(st("side", "exited", 1), st("i2", "exited", 0)))
    assert starts(compute(p, running)) == [("side", True)]  # restarted whatever the pod's policy


def test_regular_containers_follow_the_restart_policy() -> None:
    exited = [st("a", "exited", 0), st("b", "exited", 1)]
    assert starts(compute(pod("Always", names=("a", "b")), rt(*exited))) == [("a", False), ("b", False)]
    assert starts(compute(pod("OnFailure", names=("a", "b")), rt(*exited))) == [("b", False)]
    never = compute(pod("Never", names=("a", "b")), rt(*exited))
    assert starts(never) == [] and never.done


def test_done_pod_does_not_restart_its_sidecars() -> None:
    p = pod("Never", [{"name": "side", "restartPolicy": "Always"}])
    actions = compute(p, rt(st("app", "exited", 0), init=(st("side", "exited", 137),)))
    assert actions.done and starts(actions) == []


def test_liveness_failure_kills_and_restarts() -> None:
    actions = compute(pod(), rt(st("app")), failed={"app": "liveness"})
    assert [(k.name, k.message, k.probe) for k in actions.kill] == [
        ("app", "Container app failed liveness probe, will be restarted", "liveness")]
    assert starts(actions) == [("app", False)]
    never = compute(pod("Never"), rt(st("app")), failed={"app": "startup"})
    assert [k.message for k in never.kill] == ["Container app failed startup probe"] and starts(never) == []

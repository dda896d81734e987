"""The hollow runtime: instant containers, real-looking state, addresses from the podCIDR."""

from __future__ import annotations

import asyncio

import pytest

from kubelite.agent.runtime.fake import Behaviour, FakeRuntime, image_id, normalize_image
from kubelite.agent.runtime.interface import SandboxError


def pod(uid: str = "u1", **spec: object) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": uid}, "spec": dict(spec), "status": {}}


def test_image_references_are_normalised() -> None:
    assert normalize_image("nginx") == "docker.io/library/nginx:latest"
    assert normalize_image("nginx:1.27") == "docker.io/library/nginx:1.27"
    assert normalize_image("me/app") == "docker.io/me/app:latest"
    assert normalize_image("docker.io/kubelite/pause:3.10") == "docker.io/kubelite/pause:3.10"
    assert normalize_image("localhost:5000/app") == "localhost:5000/app:latest"
    assert normalize_image("nginx@sha256:ab") == "docker.io/library/nginx@sha256:ab"
    assert image_id("docker.io/library/nginx@sha256:ab") == "docker.io/library/nginx@sha256:ab"
    assert image_id("docker.io/library/nginx:1.27").startswith("docker.io/library/nginx@sha256:")


async def test_sandbox_needs_a_pod_cidr_except_on_the_host_network() -> None:
    rt = FakeRuntime("n1")
    with pytest.raises(SandboxError):
        await rt.create_sandbox(pod(), host_ip="198.19.128.16")
    host = await rt.create_sandbox(pod("u2", hostNetwork=True), host_ip="198.19.128.16")
    assert host.ips == ("198.19.128.16",)
    rt.update_pod_cidr("198.18.3.0/24")
    sandbox = await rt.create_sandbox(pod(), host_ip="198.19.128.16")
    assert sandbox.ips == ("198.18.3.2",)
    assert (await rt.create_sandbox(pod(), host_ip="x")).id == sandbox.id  # idempotent


async def test_containers_run_stop_and_release() -> None:
    rt = FakeRuntime("n1")
    rt.update_pod_cidr("198.18.3.0/24")
    await rt.create_sandbox(pod(), host_ip="h")
    init = await rt.start_container("u1", {"name": "setup", "image": "busybox"}, init=True)
    sidecar = await rt.start_container("u1", {"name": "proxy", "image": "envoy", "restartPolicy": "Always"},
                                       init=True)
    app = await rt.start_container("u1", {"name": "app", "image": "nginx"})
    assert (init.state, init.exit_code, init.reason) == ("exited", 0, "Completed")
    assert sidecar.state == "running" and app.state == "running" and app.image == "docker.io/library/nginx:latest"
    assert (await rt.start_container("u1", {"name": "app", "image": "nginx"})).id == app.id
    stopped = await rt.stop_container("u1", "app", grace_seconds=30)
    assert (stopped.state, stopped.exit_code, stopped.reason) == ("exited", 0, "Completed") and stopped.finished_at
    await rt.remove_sandbox("u1")
    assert rt.pod_status("u1") is None and rt.ipam is not None and rt.ipam.in_use() == 0


async def test_a_pod_keeps_its_address_across_a_restart_of_the_process() -> None:
    rt = FakeRuntime("n1")
    rt.update_pod_cidr("198.18.3.0/24")
    p = pod()
    p["status"]["podIP"] = "198.18.3.77"
    assert (await rt.create_sandbox(p, host_ip="h")).ips == ("198.18.3.77",)


# ----- scripted behaviour ----------------------------------------------------------------------

async def test_scripted_exits_restart_counts_and_exit_callback() -> None:
    rt = FakeRuntime("n1")
    rt.update_pod_cidr("198.18.3.0/24")
    exits: list[tuple[str, str]] = []
    rt.on_container_exit = lambda uid, name: exits.append((uid, name))
    rt.script("app", Behaviour(exit_after=0.01, exit_code=3), Behaviour(exit_after=0.01, oom=True), Behaviour())
    await rt.create_sandbox(pod(), host_ip="h")
    first = await rt.start_container("u1", {"name": "app", "image": "x"}, env=[("A", "1")])
    assert first.state == "running" and rt.configs[("u1", "app")] == ([("A", "1")], [])
    await asyncio.sleep(0.05)
    assert (first.state, first.exit_code, first.reason) == ("exited", 3, "Error") and exits == [("u1", "app")]
    second = await rt.start_container("u1", {"name": "app", "image": "x"})
    assert second.id != first.id and second.restart_count == 1
    await asyncio.sleep(0.05)
    assert (second.exit_code, second.reason) == (137, "OOMKilled")
    third = await rt.start_container("u1", {"name": "app", "image": "x"})
    await asyncio.sleep(0.03)
    assert third.state == "running" and third.restart_count == 2


async def test_start_errors_slow_stops_and_init_containers() -> None:
    rt = FakeRuntime("n1")
    rt.update_pod_cidr("198.18.3.0/24")
    rt.script("bad", Behaviour(start_error="exec: \"nope\": not found"))
    rt.script("slow", Behaviour(stop_delay=0.05, stop_exit_code=143))
    rt.script("stubborn", Behaviour(stop_delay=5))
    rt.script("setup", Behaviour(exit_after=0.02, exit_code=1), pod="p")
    await rt.create_sandbox(pod(), host_ip="h")
    bad = await rt.start_container("u1", {"name": "bad", "image": "x"})
    assert (bad.state, bad.exit_code, bad.reason, bad.message) == ("exited", 128, "StartError", 'exec: "nope": not found')
    await rt.start_container("u1", {"name": "slow", "image": "x"})
    slow = await rt.stop_container("u1", "slow", grace_seconds=1)
    assert (slow.exit_code, slow.reason) == (143, "Error")
    await rt.start_container("u1", {"name": "stubborn", "image": "x"})
    killed = await rt.stop_container("u1", "stubborn", grace_seconds=0)
    assert (killed.exit_code, killed.reason) == (137, "Error")
    init = await rt.start_container("u1", {"name": "setup", "image": "x"}, init=True)  # runs to completion
    assert (init.state, init.exit_code) == ("exited", 1)
    assert rt.pod_uids() == ["u1"]


async def test_scripted_probe_and_hook_results() -> None:
    rt = FakeRuntime("n1")
    rt.update_pod_cidr("198.18.3.0/24")
    rt.script("app", Behaviour(liveness=[True, False], post_start=False, pre_stop_delay=0.01))
    await rt.create_sandbox(pod(), host_ip="h")
    await rt.start_container("u1", {"name": "app", "image": "x"})
    results = [await rt.scripted_handler("u1", "app", "liveness") for _ in range(3)]
    assert results == [(True, ""), (False, "scripted liveness failure"), (False, "scripted liveness failure")]
    assert await rt.scripted_handler("u1", "app", "readiness") == (True, "")
    assert (await rt.scripted_handler("u1", "app", "postStart"))[0] is False  # type: ignore[index]
    assert await rt.scripted_handler("u1", "app", "preStop") == (True, "")

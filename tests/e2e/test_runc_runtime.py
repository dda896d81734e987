"""The runc runtime driven directly (no API server), as root: real namespaces, CNI plugins, conmon,
runc and cgroups. Each test removes its pods; the module checks at the end that nothing is left."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from kubelite.agent.runtime.interface import Mount
from kubelite.agent.runtime.runc import RuncRuntime, SpecError
from kubelite.images.api import ImageNotFound
from tests.e2e.runc_fixtures import (
    StubImages,
    assert_clean,
    build_rootfs,
    ctr,
    delete_bridge,
    pod,
    require_host,
    runc_config,
    uid,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SUBNET = ipaddress.ip_network("198.18.247.0/24")
RECOVERY_SUBNET = "198.18.248.0/24"
BRIDGE, RECOVERY_BRIDGE = "klrt0", "klrt1"
HOST_IP = "198.19.128.250"
HTTP_GET = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc {ip} {port}"
CRI_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) (stdout|stderr) (F|P) (.*)$")


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.rootfs = build_rootfs(tmp / "rootfs")
        self.images = StubImages(self.rootfs)
        self.config = runc_config(tmp / "root", bridge=BRIDGE, network="klrt", prefix="klrt")
        self.exits: list[tuple[str, str]] = []
        self.rt = RuncRuntime(self.config, self.images, on_container_exit=lambda u, n: self.exits.append((u, n)))
        self.rt.update_pod_cidr(str(SUBNET))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    require_host()
    e = Env(tmp_path_factory.mktemp("runc"))
    yield e
    for pod_uid in e.rt.pod_uids():
        await e.rt.remove_sandbox(pod_uid)
    await e.rt.close()
    try:
        await assert_clean(e.config)
    finally:
        delete_bridge(BRIDGE)


async def _run(*argv: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, list(argv), capture_output=True, text=True, timeout=timeout)


async def _exec(env: Env, pod_uid: str, container: str, script: str) -> tuple[int, str, str]:
    session = await env.rt.exec(pod_uid, container, ["sh", "-c", script], tty=False, stdin=False)
    assert session.stdout is not None and session.stderr is not None
    out, err = await asyncio.gather(session.stdout.read(), session.stderr.read())
    code = await session.wait()
    await session.close()
    return code, out.decode(), err.decode()


async def _start(env: Env, p: dict, *, mounts: dict[str, list[Mount]] | None = None) -> None:
    await env.rt.create_sandbox(p, host_ip=HOST_IP)
    for c in p["spec"]["containers"]:
        state = await env.rt.start_container(uid(p), c, mounts=(mounts or {}).get(c["name"], []))
        assert state.state == "running", state


def _state(env: Env, p: dict, name: str):  # noqa: ANN202
    status = env.rt.pod_status(uid(p))
    assert status is not None
    return status.containers.get(name) or status.init_containers[name]


async def test_httpd_pod_answers_the_host_and_another_pod(env: Env) -> None:
    web = pod("web", ctr("httpd", "httpd", "-f", "-p", "80", "-h", "/www"))
    client = pod("client", ctr("sh", "sleep", "3600"))
    await _start(env, web)
    await _start(env, client)
    ip = env.rt.pod_status(uid(web)).sandbox.ips[0]  # type: ignore[union-attr]
    assert ipaddress.ip_address(ip) in SUBNET
    curl = await _run("curl", "-s", "-m", "5", "--retry", "20", "--retry-connrefused", "--retry-delay", "0",
                      f"http://{ip}/index.html")
    assert curl.stdout == "hello-from-pod\n"
    hostname = await _run("curl", "-s", "-m", "5", f"http://{ip}/cgi-bin/id")
    assert hostname.stdout.strip() == "web"
    code, out, _ = await _exec(env, uid(client), "sh", HTTP_GET.format(ip=ip, port=80))
    assert code == 0 and "200 OK" in out and "hello-from-pod" in out
    for p in (web, client):
        await env.rt.remove_sandbox(uid(p))


async def test_containers_of_a_pod_share_network_ipc_uts_shm_and_a_volume(env: Env) -> None:
    shared = env.tmp / "shared-volume"
    shared.mkdir()
    p = pod("sharing", ctr("web", "sh", "-c", "echo from-web > /shared/file; exec httpd -f -p 8080 -h /www"),
            ctr("side", "sleep", "3600"))
    volume = [Mount(str(shared), "/shared")]
    await _start(env, p, mounts={"web": volume, "side": volume})
    await wait_for(lambda: (shared / "file").exists())
    ns = "readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts; hostname"
    _, web_ns, _ = await _exec(env, uid(p), "web", ns + "; echo in-shm > /dev/shm/x")
    code, side_ns, _ = await _exec(env, uid(p), "side", ns)
    assert code == 0 and web_ns == side_ns and web_ns.splitlines()[-1] == "sharing"
    code, out, _ = await _exec(env, uid(p), "side", "cat /shared/file /dev/shm/x; " + HTTP_GET.format(
        ip="127.0.0.1", port=8080))
    assert code == 0 and out.startswith("from-web\nin-shm\n") and "hello-from-pod" in out
    pid_ns = "readlink /proc/self/ns/pid"
    assert (await _exec(env, uid(p), "web", pid_ns))[1] != (await _exec(env, uid(p), "side", pid_ns))[1]
    await env.rt.remove_sandbox(uid(p))
    assert (shared / "file").read_text() == "from-web\n"  # the volume is the kubelet's: never removed


async def test_exit_codes_restarts_and_cri_logs(env: Env) -> None:
    p = pod("exits", ctr("fail", "sh", "-c", "echo out-line; echo err-line >&2; exit 3"),
            init=(ctr("init", "sh", "-c", "echo init-done"),))
    await env.rt.create_sandbox(p, host_ip=HOST_IP)
    init = await env.rt.start_container(uid(p), p["spec"]["initContainers"][0], init=True)
    assert (init.state, init.exit_code, init.reason) == ("exited", 0, "Completed")
    first = await env.rt.start_container(uid(p), p["spec"]["containers"][0])
    await wait_for(lambda: _state(env, p, "fail").state == "exited")
    state = _state(env, p, "fail")
    assert (state.exit_code, state.reason, state.restart_count) == (3, "Error", 0)
    await wait_for(lambda: (uid(p), "fail") in env.exits)
    log = env.rt.log_path(uid(p), "fail")
    assert log is not None and log.name == "0.log" and log.parent.name == "fail"
    lines = [CRI_LINE.match(line) for line in log.read_text().splitlines()]
    assert all(lines) and {(m.group(2), m.group(3), m.group(4)) for m in lines if m} == {
        ("stdout", "F", "out-line"), ("stderr", "F", "err-line")}
    again = await env.rt.start_container(uid(p), p["spec"]["containers"][0])
    assert again.restart_count == 1 and again.id != first.id
    await wait_for(lambda: _state(env, p, "fail").state == "exited")
    assert env.rt.log_path(uid(p), "fail").name == "1.log"  # type: ignore[union-attr]
    assert env.rt.log_path(uid(p), "fail", previous=True) == log
    await env.rt.remove_sandbox(uid(p))


async def test_a_rotated_log_is_reopened(env: Env) -> None:
    p = pod("rotate", ctr("tick", "sh", "-c", "while true; do echo tick; sleep 0.05; done"))
    await _start(env, p)
    log = env.rt.log_path(uid(p), "tick")
    assert log is not None
    await wait_for(_contains(log, "tick"))
    rotated = log.with_name(log.name + ".20260101-000000")
    log.rename(rotated)
    assert env.rt.reopen_log(uid(p), "tick")
    await wait_for(lambda: log.exists() and "tick" in log.read_text())
    assert "tick" in rotated.read_text()
    await env.rt.remove_sandbox(uid(p))


async def test_the_kubelet_rotator_rotates_a_full_log_and_keeps_a_bounded_number(env: Env) -> None:
    from kubelite.agent.logrotate import LogRotator, rotated_files

    p = pod("rotor", ctr("tick", "sh", "-c", "while true; do echo tick-tick-tick; sleep 0.01; done"))
    await _start(env, p)
    log = env.rt.log_path(uid(p), "tick")
    assert log is not None
    rotator = LogRotator(env.rt, max_size=512, max_files=2)
    for _ in range(3):
        await wait_for(lambda: log.exists() and log.stat().st_size >= 512)
        assert await asyncio.to_thread(rotator.rotate_all) == 1
    await wait_for(lambda: log.exists() and "tick-tick-tick" in log.read_text())
    kept = rotated_files(log)
    assert len(kept) == 1 and "tick-tick-tick" in kept[0].read_text()  # max_files=2: live + 1 rotated
    await env.rt.remove_sandbox(uid(p))


async def test_start_and_config_errors(env: Env) -> None:
    p = pod("broken", ctr("missing", "/no/such/binary"), ctr("root", "id", securityContext={"runAsNonRoot": True}))
    await env.rt.create_sandbox(p, host_ip=HOST_IP)
    missing = await env.rt.start_container(uid(p), p["spec"]["containers"][0])
    assert (missing.state, missing.exit_code, missing.reason) == ("exited", 128, "StartError")
    assert "no such file or directory" in env.rt.container_message(uid(p), "missing")
    with pytest.raises(SpecError, match="runAsNonRoot and image will run as root"):
        await env.rt.start_container(uid(p), p["spec"]["containers"][1])
    assert "root" not in env.rt.pod_status(uid(p)).containers  # type: ignore[union-attr]
    with pytest.raises(ImageNotFound):
        await env.rt.start_container(uid(p), {"name": "x", "image": "nginx", "command": ["x"]})
    await env.rt.remove_sandbox(uid(p))


async def test_memory_limit_is_reported_oomkilled(env: Env) -> None:
    hog = ctr("hog", "sh", "-c", "x=0123456789abcdef; while true; do x=$x$x; done",
              resources={"limits": {"memory": "32Mi"}, "requests": {"memory": "32Mi"}})
    p = pod("oom", hog)
    await _start(env, p)
    await wait_for(lambda: _state(env, p, "hog").state == "exited", timeout=30)
    state = _state(env, p, "hog")
    assert (state.exit_code, state.reason) == (137, "OOMKilled")
    await env.rt.remove_sandbox(uid(p))


async def test_stop_honours_the_grace_period_then_kills(env: Env) -> None:
    p = pod("grace", ctr("polite", "sh", "-c", 'trap "echo got-term; exit 42" TERM; while true; do sleep 0.1; done'),
            ctr("stubborn", "sh", "-c", 'trap "" TERM; while true; do sleep 0.1; done'))
    await _start(env, p)
    await asyncio.sleep(0.3)  # let the shells install their traps
    t0 = time.monotonic()
    polite = await env.rt.stop_container(uid(p), "polite", grace_seconds=10)
    assert (polite.exit_code, polite.reason) == (42, "Error") and time.monotonic() - t0 < 3
    assert "got-term" in env.rt.log_path(uid(p), "polite").read_text()  # type: ignore[union-attr]
    t0 = time.monotonic()
    stubborn = await env.rt.stop_container(uid(p), "stubborn", grace_seconds=1)
    elapsed = time.monotonic() - t0
    assert stubborn.exit_code == 137 and 1.0 <= elapsed < 4, (stubborn, elapsed)
    await env.rt.remove_sandbox(uid(p))


async def test_exec_exit_code_stdin_and_tty(env: Env) -> None:
    p = pod("execs", ctr("sh", "sleep", "3600"))
    await _start(env, p)
    assert (await _exec(env, uid(p), "sh", "exit 3"))[0] == 3
    cat = await env.rt.exec(uid(p), "sh", ["cat"], tty=False, stdin=True)
    await cat.write_stdin(b"hello\n")
    await cat.close_stdin()
    assert cat.stdout is not None and await cat.stdout.read() == b"hello\n" and await cat.wait() == 0
    await cat.close()
    tty = await env.rt.exec(uid(p), "sh", ["sh"], tty=True, stdin=True)
    assert tty.stdout is not None and tty.stderr is None
    await tty.resize(120, 40)
    banner = await asyncio.wait_for(tty.stdout.readuntil(b"/ # "), 10)
    await tty.write_stdin(b"echo $((6*7)); stty size; tty; exit 5\n")
    output = (await asyncio.wait_for(tty.stdout.read(), 10)).decode()
    assert b"BusyBox" in banner and output.count("exit 5") == 1  # echoed once, by the container's terminal
    assert "\r\n42\r\n" in output and "40 120" in output and "/dev/pts/" in output
    assert await tty.wait() == 5
    await tty.close()
    await env.rt.remove_sandbox(uid(p))


async def test_attach_to_a_container_with_stdin(env: Env) -> None:
    p = pod("attach", ctr("echo", "sh", "-c", "while read line; do echo got:$line; done; echo bye; exit 4",
                          stdin=True, stdinOnce=True))
    await _start(env, p)
    session = await env.rt.attach(uid(p), "echo", tty=False, stdin=True)
    assert session.stdout is not None
    await session.write_stdin(b"hi\n")
    assert await asyncio.wait_for(session.stdout.readline(), 10) == b"got:hi\n"
    await session.close_stdin()
    assert await asyncio.wait_for(session.stdout.readline(), 10) == b"bye\n"
    assert await asyncio.wait_for(session.wait(), 10) == 4
    await session.close()
    await env.rt.remove_sandbox(uid(p))


async def test_attach_to_a_container_with_a_terminal(env: Env) -> None:
    p = pod("attach-tty", ctr("shell", "sh", tty=True, stdin=True))
    await _start(env, p)
    session = await env.rt.attach(uid(p), "shell", tty=True, stdin=True)
    assert session.stdout is not None and session.stderr is None
    await session.resize(100, 30)
    await asyncio.sleep(0.1)  # conmon applies the size from its ctl fifo
    await session.write_stdin(b"echo hi-$((1+1)); stty size; exit 6\n")
    output = b""
    while b"30 100" not in output:
        output += await asyncio.wait_for(session.stdout.read(1024), 10)
    assert b"hi-2" in output
    assert await asyncio.wait_for(session.wait(), 10) == 6
    await session.close()
    log = env.rt.log_path(uid(p), "shell")
    assert log is not None and "hi-2" in log.read_text()
    await env.rt.remove_sandbox(uid(p))


async def test_port_forward_reaches_the_pod(env: Env) -> None:
    p = pod("forward", ctr("httpd", "httpd", "-f", "-p", "80", "-h", "/www"))
    await _start(env, p)
    for _ in range(100):  # httpd binds a moment after it starts
        try:
            reader, writer = await env.rt.port_forward(uid(p), 80)
            break
        except ConnectionRefusedError:
            await asyncio.sleep(0.02)
    writer.write(b"GET /index.html HTTP/1.0\r\n\r\n")
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert response.startswith(b"HTTP/1.1 200 OK") and response.endswith(b"hello-from-pod\n")
    await env.rt.remove_sandbox(uid(p))


async def test_spec_of_a_running_container(env: Env) -> None:
    p = pod("specs", ctr("sh", "sleep", "3600", env=[{"name": "OWN", "value": "x"}],
                         securityContext={"runAsUser": 1000, "readOnlyRootFilesystem": True},
                         resources={"limits": {"cpu": "250m", "memory": "64Mi"}, "requests": {"cpu": "100m"}}),
            securityContext={"supplementalGroups": [3000]})
    await _start(env, p)
    code, out, _ = await _exec(env, uid(p), "sh", "id; echo $OWN $IMAGE_VAR $HOSTNAME; cat /etc/resolv.conf; "
                                                  "touch /x 2>&1; cat /etc/hostname")
    assert code == 0
    assert out.splitlines()[0] == "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra),3000"
    assert "x from-image specs" in out and "nameserver 198.19.0.10" in out
    assert "search e2e.svc.cluster.local svc.cluster.local cluster.local" in out
    assert "Read-only file system" in out and out.rstrip().endswith("specs")
    code, out, _ = await _exec(env, uid(p), "sh", "cd /sys/fs/cgroup; cat cpu/cpu.cfs_quota_us cpu/cpu.shares "
                                                  "memory/memory.limit_in_bytes")
    assert code == 0 and out.split() == ["25000", "102", str(64 * 1024 * 1024)]
    await env.rt.remove_sandbox(uid(p))


async def test_host_network_pod_and_host_port(env: Env) -> None:
    host = pod("on-host", ctr("sh", "sleep", "3600"), hostNetwork=True)
    sandbox = await env.rt.create_sandbox(host, host_ip=HOST_IP)
    assert sandbox.ips == (HOST_IP,) and sandbox.host_network
    await env.rt.start_container(uid(host), host["spec"]["containers"][0])
    code, out, _ = await _exec(env, uid(host), "sh", "hostname; readlink /proc/self/ns/net")
    assert code == 0 and out.splitlines() == [Path("/proc/sys/kernel/hostname").read_text().strip(),
                                              str(Path("/proc/self/ns/net").readlink())]
    await env.rt.remove_sandbox(uid(host))
    web = pod("hostport", ctr("httpd", "httpd", "-f", "-p", "80", "-h", "/www",
                              ports=[{"containerPort": 80, "hostPort": 18081, "protocol": "TCP"}]))
    await _start(env, web)
    gateway = str(next(SUBNET.hosts()))
    curl = await _run("curl", "-s", "-m", "5", "--retry", "20", "--retry-connrefused", "--retry-delay", "0",
                      f"http://{gateway}:18081/index.html")
    assert curl.stdout == "hello-from-pod\n"
    sandbox_id = env.rt.pod_status(uid(web)).sandbox.id  # type: ignore[union-attr]
    await env.rt.remove_sandbox(uid(web))
    rules = await _run("iptables-save", "-t", "nat")
    assert sandbox_id not in rules.stdout  # portmap's DEL removed its chains


async def test_create_and_remove_cycles_leave_nothing_behind(env: Env) -> None:
    for i in range(20):
        p = pod(f"cycle-{i}", ctr("httpd", "httpd", "-f", "-p", "80", "-h", "/www"), ctr("sleep", "sleep", "60"))
        await _start(env, p)
        assert (await _exec(env, uid(p), "sleep", "true"))[0] == 0
        await env.rt.remove_sandbox(uid(p))
    await assert_clean(env.config)
    batch = [pod(f"parallel-{i}", ctr("httpd", "httpd", "-f", "-p", "80", "-h", "/www")) for i in range(10)]
    await asyncio.gather(*(_start(env, p) for p in batch))  # pods start in parallel, as pod workers run them
    ips = {env.rt.pod_status(uid(p)).sandbox.ips[0] for p in batch}  # type: ignore[union-attr]
    assert len(ips) == 10
    await asyncio.gather(*(env.rt.remove_sandbox(uid(p)) for p in batch))
    await assert_clean(env.config)


async def test_a_new_runtime_on_the_same_root_recovers_running_containers(env: Env) -> None:
    config = runc_config(env.tmp / "recover-root", bridge=RECOVERY_BRIDGE, network="klrt-rec", prefix="klrr")
    first = RuncRuntime(config, env.images)
    first.update_pod_cidr(RECOVERY_SUBNET)
    p = pod("survivor", ctr("keep", "sleep", "3600"), ctr("dies", "sleep", "3600"))
    try:
        await first.create_sandbox(p, host_ip=HOST_IP)
        for c in p["spec"]["containers"]:
            await first.start_container(uid(p), c)
        before = first.pod_status(uid(p))
        await first.close()  # the agent goes away; its containers stay
        dies = before.containers["dies"].id  # type: ignore[union-attr]
        await _run("runc", "--root", str(config.root / "runc"), "kill", dies, "KILL")
        await asyncio.sleep(0.3)
        second = RuncRuntime(config, env.images)
        second.update_pod_cidr(RECOVERY_SUBNET)
        after = second.pod_status(uid(p))
        assert after is not None and after.sandbox == before.sandbox  # type: ignore[union-attr]
        keep = after.containers["keep"]
        assert keep.state == "running" and keep.id == before.containers["keep"].id  # type: ignore[union-attr]
        assert (after.containers["dies"].state, after.containers["dies"].exit_code) == ("exited", 137)
        session = await second.exec(uid(p), "keep", ["true"], tty=False, stdin=False)
        assert await session.wait() == 0
        stopped = await second.stop_container(uid(p), "keep", grace_seconds=0)
        assert (stopped.state, stopped.exit_code) == ("exited", 137)
        await second.remove_sandbox(uid(p))
        await second.close()
        await assert_clean(config)
    finally:
        sweeper = RuncRuntime(config, env.images)  # whatever a failed assertion left running
        for pod_uid in sweeper.pod_uids():
            await sweeper.remove_sandbox(pod_uid)
        await sweeper.close()
        delete_bridge(RECOVERY_BRIDGE)


def _contains(path: Path, text: str) -> Callable[[], bool]:
    return lambda: text in path.read_text()


async def _raw_runc_first_line(env: Env, bundle: Path, name: str) -> float:
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        "runc", "--root", str(env.tmp / "raw-runc"), "run", name, cwd=bundle,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    assert await proc.stdout.readline() == b"ready\n"
    elapsed = time.monotonic() - t0
    await proc.wait()
    return elapsed


def _raw_bundle(env: Env) -> Path:
    bundle = env.tmp / "raw-bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"].update(terminal=False, args=["echo", "ready"])
    spec["root"] = {"path": str(env.rootfs), "readonly": True}
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


async def test_start_latency_against_raw_runc(env: Env) -> None:
    """Sandbox + container start (to the container's first log line) beside `runc run` of the same
    rootfs to its first output line, p50 over 20 runs each, interleaved."""
    bundle, ours, returned, raw = _raw_bundle(env), [], [], []
    for i in range(20):
        raw.append(await _raw_runc_first_line(env, bundle, f"raw-{i}"))
        p = pod(f"lat-{i}", ctr("echo", "sh", "-c", "echo ready; sleep 60"))
        t0 = time.monotonic()
        await env.rt.create_sandbox(p, host_ip=HOST_IP)
        await env.rt.start_container(uid(p), p["spec"]["containers"][0])
        returned.append(time.monotonic() - t0)
        log = env.rt.log_path(uid(p), "echo")
        assert log is not None
        await wait_for(_contains(log, "ready"), interval=0.001)
        ours.append(time.monotonic() - t0)
        await env.rt.remove_sandbox(uid(p))
    p50 = {k: statistics.median(v) * 1000 for k, v in
           (("raw runc run", raw), ("sandbox+start returned", returned), ("sandbox+start first line", ours))}
    print("\nstart latency p50 (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in p50.items())
          + f"; ratio {p50['sandbox+start first line'] / p50['raw runc run']:.1f}x")
    assert p50["sandbox+start first line"] < 2000

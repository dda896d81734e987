"""Probes: the worker state machine (thresholds, initial delay, startup gating, hold after a
liveness failure) with explicit times, a manager driving scripted results, and the handlers
against loopback servers."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kubelite.agent import handlers
from kubelite.agent.probes import ProbeContext, ProbeManager, ProbeSpec, ProbeTracker

Obj = dict[str, Any]
POD: Obj = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": {"restartPolicy": "Always"}}


def ctx(since: float = 100.0, *, cid: str = "c1", running: bool = True, pod: Obj = POD) -> ProbeContext:
    return ProbeContext(pod, {"name": "app"}, cid, running, since, "127.0.0.1")


def spec(kind: str, **probe: Any) -> ProbeSpec:
    result = ProbeSpec.of({"name": "app", f"{kind}Probe": {"exec": {"command": ["true"]}, **probe}}, kind)
    assert result is not None
    return result


def test_spec_defaults_are_upstreams() -> None:
    s = spec("liveness")
    assert (s.initial_delay, s.period, s.timeout, s.success_threshold, s.failure_threshold) == (0, 10, 1, 1, 3)
    assert ProbeSpec.of({"name": "app"}, "readiness") is None


def test_readiness_starts_unready_and_follows_thresholds() -> None:
    t = ProbeTracker(spec("readiness", initialDelaySeconds=5, successThreshold=2, failureThreshold=2))
    assert t.observe(ctx(since=3), started=True) == "wait" and t.result is False  # initial delay
    assert t.observe(ctx(since=5), started=True) == "probe"
    assert not t.record(True) and t.result is False  # one success of two
    assert t.record(True) and t.result is True
    assert not t.record(False) and t.result is True  # one failure of two
    assert t.record(False) and t.result is False
    assert t.observe(ctx(), started=True) == "probe"  # readiness keeps probing


def test_liveness_failure_holds_until_a_new_container() -> None:
    t = ProbeTracker(spec("liveness", failureThreshold=2))
    assert t.observe(ctx(), started=True) == "probe" and t.result is True
    t.record(False)
    assert t.result is True
    assert t.record(False) and t.result is False and t.on_hold
    assert t.observe(ctx(), started=True) == "wait"  # on hold: no probing a container about to be killed
    assert t.observe(ctx(cid="c2", since=0), started=True) == "probe" and t.result is True and not t.on_hold


def test_startup_gates_the_others_and_stops_once_started() -> None:
    startup, liveness = ProbeTracker(spec("startup")), ProbeTracker(spec("liveness"))
    assert liveness.observe(ctx(), started=False) == "wait"
    assert startup.observe(ctx(), started=False) == "probe"
    assert startup.observe(ctx(), started=True) == "wait"
    assert liveness.observe(ctx(), started=True) == "probe"


def test_exited_container_and_deleting_pod() -> None:
    t = ProbeTracker(spec("liveness"))
    t.observe(ctx(), started=True)
    assert t.observe(ctx(running=False), started=True) == "wait" and t.result is False
    never = {**POD, "spec": {"restartPolicy": "Never"}}
    assert ProbeTracker(spec("readiness")).observe(ctx(running=False, pod=never), started=True) == "stop"
    deleting = {**POD, "metadata": {**POD["metadata"], "deletionTimestamp": "2025-01-01T00:00:00Z"}}
    assert t.observe(ctx(cid="c3", pod=deleting), started=True) == "stop" and t.result is True
    r = ProbeTracker(spec("readiness"))
    assert r.observe(ctx(pod=deleting), started=True) == "probe"  # readiness runs during termination


def test_seeded_verdict_for_an_adopted_container() -> None:
    t = ProbeTracker(spec("readiness"))
    t.observe(ctx(), started=True, seed=True)
    assert t.result is True


class Scripted:
    def __init__(self, results: list[bool]) -> None:
        self.results = results
        self.calls = 0

    async def scripted_handler(self, uid: str, name: str, purpose: str) -> tuple[bool, str] | None:
        self.calls += 1
        ok = self.results[min(self.calls - 1, len(self.results) - 1)]
        return ok, "" if ok else "boom"


async def test_manager_notifies_on_verdict_changes_and_records_failures() -> None:
    runtime = Scripted([True, False, False, False])
    notified: list[str] = []
    events: list[tuple[str, str]] = []
    pod = {**POD, "spec": {"containers": [{"name": "app", "livenessProbe": {
        "exec": {"command": ["x"]}, "periodSeconds": 1, "failureThreshold": 3}}]}}
    manager = ProbeManager(runtime, context=lambda uid, name: ctx(pod=pod), notify=notified.append,
                           record=lambda obj, kind, reason, msg: events.append((reason, msg)), scale=0.01)
    manager.add_pod(pod)
    for _ in range(200):
        if manager.failed("u1", "app", "c1"):
            break
        await asyncio.sleep(0.01)
    assert manager.failed("u1", "app", "c1") == "liveness"
    assert notified == ["u1"]
    assert events == [("Unhealthy", "Liveness probe failed: boom")] * 3
    assert manager.started("u1", "app", "c1") and manager.ready("u1", "app", "c1")  # no such probes
    await manager.remove_pod("u1")
    await manager.stop()


async def test_readiness_verdict_before_the_first_probe_is_unready() -> None:
    pod = {**POD, "spec": {"containers": [{"name": "app", "readinessProbe": {"exec": {"command": ["x"]},
                                                                          "initialDelaySeconds": 100}}]}}
    manager = ProbeManager(Scripted([True]), context=lambda uid, name: ctx(since=0, pod=pod), notify=lambda u: None,
                           record=lambda *a: None)
    manager.add_pod(pod)
    await asyncio.sleep(0.01)
    assert manager.ready("u1", "app", "c1") is False
    manager.seed("u1", "app", "c9", ready=True, started=True)
    assert manager.ready("u1", "app", "c9") is True
    await manager.stop()


# ----- handlers --------------------------------------------------------------------------------

async def test_http_and_tcp_handlers() -> None:
    async def handle(request: web.Request) -> web.Response:
        status = int(request.query.get("status", "200"))
        return web.Response(status=status, text=request.headers.get("X-Probe", "") + request.headers["User-Agent"])

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        container = {"name": "app", "ports": [{"name": "http", "containerPort": port}]}
        url, headers = handlers.http_url({"port": "http", "path": "healthz", "httpHeaders": [
            {"name": "X-Probe", "value": "yes"}]}, container, "127.0.0.1")
        assert url == f"http://127.0.0.1:{port}/healthz"
        async with aiohttp.ClientSession() as session:
            ok = await handlers.run_http(session, url, headers, timeout=2)
            assert ok.ok and ok.output == "yeskube-probe/1.37"
            bad = await handlers.run_http(session, url + "?status=500", headers, timeout=2)
            assert (bad.ok, bad.output) == (False, "HTTP probe failed with statuscode: 500")
            assert (await handlers.run_http(session, url + "?status=500", headers, timeout=2, statuses=False)).ok
        assert (await handlers.run_tcp("127.0.0.1", port, timeout=1)).ok
    finally:
        await runner.cleanup()
    async with aiohttp.ClientSession() as session:
        refused = await handlers.run_http(session, f"http://127.0.0.1:{port}/", {}, timeout=2)
    assert refused.output == f'Get "http://127.0.0.1:{port}/": dial tcp 127.0.0.1:{port}: connect: connection refused'
    tcp = await handlers.run_tcp("127.0.0.1", port, timeout=1)
    assert (tcp.ok, tcp.output) == (False, f"dial tcp 127.0.0.1:{port}: connect: connection refused")
    with pytest.raises(ValueError):
        handlers.resolve_port("nosuch", {"name": "app"})


class Session:
    def __init__(self, out: bytes, code: int, delay: float = 0.0) -> None:
        self.stdout, self.stderr = asyncio.StreamReader(), asyncio.StreamReader()
        self.stdout.feed_data(out)
        self.stdout.feed_eof()
        self.stderr.feed_eof()
        self.code, self.delay, self.closed = code, delay, False

    async def wait(self) -> int:
        await asyncio.sleep(self.delay)
        return self.code

    async def close(self) -> None:
        self.closed = True


async def test_exec_handler_output_exit_code_and_timeout() -> None:
    sessions: list[Session] = []

    class Runtime:
        async def exec(self, uid: str, name: str, command: list[str], *, tty: bool, stdin: bool) -> Session:
            sessions.append(Session(b"not ok\n", int(command[0]), float(command[1])))
            return sessions[-1]

    assert await handlers.run_exec(Runtime(), "u", "app", ["0", "0"], timeout=1) == handlers.Outcome(True, "not ok\n")
    assert await handlers.run_exec(Runtime(), "u", "app", ["1", "0"], timeout=1) == handlers.Outcome(False, "not ok\n")
    timed = await handlers.run_exec(Runtime(), "u", "app", ["0", "5"], timeout=0.05)
    assert (timed.ok, timed.output) == (False, 'command "0 5" timed out')
    assert all(s.closed for s in sessions)
    assert (await handlers.run_exec(object(), "u", "app", ["x"], timeout=1)).unknown

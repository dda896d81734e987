"""LeaderElector against a real in-process API server: one leader at a time, takeover when the
leader stops renewing, immediate handover on release."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from kubelite.client import Client, Connection
from kubelite.client.leader import LeaderElector
from kubelite.client.resources import LEASES
from kubelite.cluster.config import ServerConfig
from kubelite.cluster.server import ServerRuntime

LEASE, RENEW, RETRY = 2.0, 1.0, 0.2  # leaseDurationSeconds is whole seconds
SLACK = 0.8  # event-loop and request latency on a loaded test machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    config = ServerConfig(data_dir=tmp_path, datastore="memory://", port=free_port(), tls=False,
                          controllers="", scheduler=False, dns=False, registry=False)
    runtime = ServerRuntime(config)
    await runtime.start()
    assert runtime.socket_path is not None
    c = Client(Connection.unix(runtime.socket_path))
    yield c
    await c.close()
    await runtime.stop()


class Leadership:
    """Work for the electors: records who leads, when, and the most that ever led at once."""

    def __init__(self) -> None:
        self.active: set[str] = set()
        self.most = 0
        self.started: dict[str, list[float]] = {}

    def work(self, identity: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def lead() -> None:
            self.active.add(identity)
            self.most = max(self.most, len(self.active))
            self.started.setdefault(identity, []).append(time.monotonic())
            try:
                await asyncio.Event().wait()
            finally:
                self.active.discard(identity)
        return lead

    async def wait_for(self, identity: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while identity not in self.active:
            assert time.monotonic() < deadline, f"{identity} did not become leader in {timeout}s"
            await asyncio.sleep(0.02)
        return time.monotonic()


def elector(client: Any, identity: str, *, lease: float = LEASE, name: str = "test-lock") -> LeaderElector:
    return LeaderElector(client, name, identity, lease_duration=lease, renew_deadline=RENEW, retry_period=RETRY)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Flaky:
    """A client whose requests fail (as if its API server were unreachable) while `down`."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.down = False

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)

        async def maybe(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise OSError("partitioned")
            return await call(*args, **kwargs)
        return maybe


async def holder(client: Client, name: str = "test-lock") -> str:
    lease = await client.get(LEASES, name, "kube-system")
    return str(lease["spec"].get("holderIdentity") or "")


async def test_one_leads_the_other_waits_then_takes_over_when_renewals_stop(client: Client) -> None:
    seen = Leadership()
    link = Flaky(client)
    a, b = elector(link, "a"), elector(client, "b")
    run_a = asyncio.create_task(a.run(seen.work("a")))
    await seen.wait_for("a", 5)
    run_b = asyncio.create_task(b.run(seen.work("b")))
    try:
        await asyncio.sleep(LEASE + 2 * RETRY)  # longer than a lease: b still must not lead
        assert seen.active == {"a"} and a.is_leader and not b.is_leader
        assert await holder(client) == "a"
        stopped = time.monotonic()
        link.down = True  # a's renewals stop (as if it died); the lease still names it
        took_over = await seen.wait_for("b", LEASE + RETRY + SLACK + 2)
        waited = took_over - stopped
        # b waits until it has seen the same record for a whole lease, counted from a's last renewal
        assert LEASE - RETRY - 0.1 <= waited <= LEASE + RETRY + SLACK
        assert await holder(client) == "b"
        lease = await client.get(LEASES, "test-lock", "kube-system")
        assert lease["spec"]["leaseTransitions"] == 1
        assert seen.most == 1
    finally:
        await stop(run_a)
        await stop(run_b)


async def test_cancel_stops_work_then_releases_so_the_successor_starts_at_once(client: Client) -> None:
    """A clean shutdown cancels `run`: the work ends first, then the lease is released, so the
    successor takes over within a retry period and never overlaps (client-go's ReleaseOnCancel)."""
    seen = Leadership()
    long_lease = 10.0  # far longer than the handover may take
    a, b = elector(client, "a", lease=long_lease), elector(client, "b", lease=long_lease)
    run_a = asyncio.create_task(a.run(seen.work("a")))
    await seen.wait_for("a", 5)
    run_b = asyncio.create_task(b.run(seen.work("b")))
    try:
        await asyncio.sleep(3 * RETRY)  # a renews a few times meanwhile
        released = time.monotonic()
        await stop(run_a)
        assert "a" not in seen.active
        took_over = await seen.wait_for("b", RETRY + SLACK + 1)
        assert took_over - released <= RETRY + SLACK
        assert seen.most == 1
        assert await holder(client) == "b"
    finally:
        await stop(run_a)
        await stop(run_b)


async def test_never_two_leaders_while_leaders_lose_and_regain_the_api(client: Client) -> None:
    """Cut the current leader off for a while, again and again: it must stop its work before
    another candidate starts (renew_deadline + retry_period < lease_duration)."""
    seen = Leadership()
    links = {name: Flaky(client) for name in "abc"}
    electors = {name: elector(link, name) for name, link in links.items()}
    runs = [asyncio.create_task(e.run(seen.work(name))) for name, e in electors.items()]
    rng = random.Random(7)
    try:
        for _ in range(3):
            leader = await _current_leader(seen, 2 * LEASE + 2)
            links[leader].down = True
            others = set(electors) - {leader}
            deadline = time.monotonic() + LEASE + RETRY + SLACK + 2
            while not seen.active & others:  # someone else takes over; the cut-off one stopped
                assert time.monotonic() < deadline, "nobody took over"
                assert seen.most == 1
                await asyncio.sleep(0.01)
            await asyncio.sleep(rng.uniform(0, RETRY))
            links[leader].down = False
        assert seen.most == 1
        assert sum(len(v) for v in seen.started.values()) >= 4  # the first leader and 3 successors
    finally:
        for run in runs:
            await stop(run)


async def _current_leader(seen: Leadership, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while len(seen.active) != 1:
        assert time.monotonic() < deadline, "no leader"
        await asyncio.sleep(0.02)
    return next(iter(seen.active))


class Hanging(Flaky):
    """Requests never answer while `down` (an API server stuck, not refusing)."""

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)

        async def maybe(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                await asyncio.Event().wait()
            return await call(*args, **kwargs)
        return maybe


async def test_leader_whose_renewal_hangs_stops_by_renew_deadline(client: Client) -> None:
    seen = Leadership()
    link = Hanging(client)
    a, b = elector(link, "a"), elector(client, "b")
    run_a = asyncio.create_task(a.run(seen.work("a")))
    await seen.wait_for("a", 5)
    run_b = asyncio.create_task(b.run(seen.work("b")))
    try:
        link.down = True
        await seen.wait_for("b", LEASE + RETRY + SLACK + 2)
        assert seen.most == 1, "a still worked when b took over"
    finally:
        await stop(run_a)
        await stop(run_b)

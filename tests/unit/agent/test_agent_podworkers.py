"""Pod workers: one sync at a time per pod, latest state wins, retries with backoff."""

from __future__ import annotations

import asyncio

import pytest

from kubelite.agent import podworkers
from kubelite.agent.podworkers import PodWorkers


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_updates_coalesce_and_pods_run_in_parallel() -> None:
    seen: list[tuple[str, int]] = []
    gate = asyncio.Event()
    running = 0
    peak = 0

    async def sync(pod: dict, deleted: bool) -> float | None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        seen.append((pod["metadata"]["uid"], pod["v"]))
        await gate.wait()
        running -= 1
        return None

    workers = PodWorkers(sync)
    workers.update("a", {"metadata": {"uid": "a"}, "v": 0})
    workers.update("b", {"metadata": {"uid": "b"}, "v": 0})
    await settle()
    for v in (1, 2):  # arrive while a's first sync runs
        workers.update("a", {"metadata": {"uid": "a"}, "v": v})
    await settle()
    assert peak == 2  # a and b in parallel, never two syncs of a
    gate.set()
    await settle()
    assert seen == [("a", 0), ("b", 0), ("a", 2)]  # a's updates 1 and 2 coalesced into the latest
    await workers.stop()


async def test_failures_retry_and_delays_resync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(podworkers, "BASE_BACKOFF", 0.01)
    calls: list[bool] = []

    async def sync(pod: dict, deleted: bool) -> float | None:
        calls.append(deleted)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return 0.01 if len(calls) == 2 else None

    workers = PodWorkers(sync)
    workers.update("a", {"metadata": {"uid": "a"}})
    await asyncio.sleep(0.1)
    assert len(calls) == 3  # failed, retried (asking to come back), came back
    workers.update("a", {"metadata": {"uid": "a"}}, deleted=True)
    await asyncio.sleep(0.02)
    assert calls[-1] is True and workers.known() == []  # a deleted pod's worker is gone
    await workers.stop()

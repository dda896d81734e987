"""Work queue guarantees: deduplication, one worker per key, rate-limited retries."""

from __future__ import annotations

import asyncio

from kubelite.client.workqueue import WorkQueue, run_workers


async def test_duplicate_adds_are_one_item() -> None:
    q = WorkQueue()
    for _ in range(5):
        q.add("a")
    q.add("b")
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"


async def test_key_added_while_processing_is_requeued_after_done_not_given_twice() -> None:
    q = WorkQueue()
    q.add("a")
    key = await q.get()
    q.add("a")  # arrives while "a" is being processed
    assert len(q) == 0  # not handed to a second worker
    q.done(key)
    assert len(q) == 1 and await q.get() == "a"


async def test_rate_limited_retries_back_off_and_forget_resets() -> None:
    q = WorkQueue(base_delay=0.01)
    q.add_rate_limited("a")
    q.add_rate_limited("a")
    assert q.failures("a") == 2
    assert await asyncio.wait_for(q.get(), 1) == "a"
    q.done("a")
    q.forget("a")
    assert q.failures("a") == 0


async def test_workers_never_sync_a_key_concurrently() -> None:
    q = WorkQueue(base_delay=0.001)
    active: set[str] = set()
    overlaps = 0
    calls: dict[str, int] = {}

    async def sync(key: str) -> None:
        nonlocal overlaps
        if key in active:
            overlaps += 1
        active.add(key)
        calls[key] = calls.get(key, 0) + 1
        await asyncio.sleep(0.002)
        active.discard(key)
        if calls[key] == 1 and key == "k0":
            raise RuntimeError("first attempt fails")  # retried with backoff

    runner = asyncio.create_task(run_workers(q, sync, workers=4))
    for _ in range(20):
        for i in range(5):
            q.add(f"k{i}")
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.2)
    q.shutdown()
    await asyncio.wait_for(runner, 2)
    assert overlaps == 0
    assert calls["k0"] >= 2 and set(calls) == {f"k{i}" for i in range(5)}

"""Several stores (processes) on one SQLite file: every process's watchers see every write exactly
once, in revision order, without gaps; writers wait for each other instead of failing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kubelite.store.interface import Event, KeyValue, WatcherOverflow
from kubelite.store.sqlite import SqliteStore
from kubelite.store.sqlite_poll import follows

ROOT = Path(__file__).resolve().parents[3]

# One writer process: watches /mp/ from `start`, waits for "go", then creates, updates and deletes
# its own keys from several tasks at once (so its writes group-commit and interleave with the other
# process's), and keeps watching until it has seen `total` events from both processes.
WORKER = r"""
import asyncio, json, sys
from kubelite.store.sqlite import SqliteStore

async def main(path, tag, keys, start, total):
    store = SqliteStore(path, poll_interval=0.02)
    seen, acks = [], []
    done = asyncio.Event()

    async def watch():
        async for ev in store.watch("/mp/", start_revision=start):
            seen.append([ev.kv.mod_revision, ev.type, ev.kv.key, ev.prev.mod_revision if ev.prev else 0])
            if len(seen) == total:
                done.set()

    async def writer(first):
        for i in range(first, keys, 4):
            key = f"/mp/{tag}/{i}"
            kv = await store.create(key, b"v1")
            acks.append(kv.mod_revision)
            kv = await store.update(key, b"v2", expected_revision=kv.mod_revision)
            acks.append(kv.mod_revision)
            if i % 3 == 0:
                await store.delete(key, expected_revision=kv.mod_revision)  # returns the old value

    task = asyncio.create_task(watch())
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await asyncio.gather(*(writer(k) for k in range(4)))
    try:
        await asyncio.wait_for(done.wait(), 30)
    finally:
        task.cancel()
        print(json.dumps({"seen": seen, "acks": acks}), flush=True)
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))
"""


def writes_for(keys: int) -> int:
    return sum(3 if i % 3 == 0 else 2 for i in range(keys))


def test_two_processes_writing_concurrently_each_see_every_event_once_in_order(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")

    async def seed() -> int:
        store = SqliteStore(path)
        await store.create("/seed", b"x")
        start = await store.current_revision()
        await store.close()
        return start

    start = asyncio.run(seed())
    keys = 120
    total = 2 * writes_for(keys)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, path, tag, str(keys), str(start), str(total)],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for tag in ("a", "b")]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:  # both start writing at (nearly) the same moment
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(proc.communicate(timeout=60)[0]) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    expected = list(range(start + 1, start + total + 1))  # every revision, no gap, no duplicate
    for result in results:
        assert [rev for rev, *_ in result["seen"]] == expected
    assert results[0]["seen"] == results[1]["seen"]  # the same history, whichever process watched
    acked = results[0]["acks"] + results[1]["acks"]  # creates and updates
    assert len(set(acked)) == len(acked) and set(acked) <= set(expected)
    a_revs, b_revs = set(results[0]["acks"]), set(results[1]["acks"])
    assert max(a_revs) > min(b_revs) and max(b_revs) > min(a_revs), "the writes did not interleave"
    by_key: dict[str, list[list[object]]] = {}
    for event in results[0]["seen"]:
        by_key.setdefault(event[2], []).append(event)
    for key, events in by_key.items():  # each key: created, updated (prev = create), maybe deleted
        assert [e[1] for e in events] in (["PUT", "PUT"], ["PUT", "PUT", "DELETE"]), key
        assert events[0][3] == 0 and events[1][3] == events[0][0]
        assert len(events) == 2 or events[2][3] == events[1][0]


async def collect(store: SqliteStore, prefix: str, start: int, count: int) -> list[Event]:
    events: list[Event] = []
    async for event in store.watch(prefix, start_revision=start):
        events.append(event)
        if len(events) == count:
            break
    return events


async def test_write_through_one_store_reaches_the_other_stores_watch(tmp_path: Path) -> None:
    a = SqliteStore(str(tmp_path / "s.db"), poll_interval=0.02)
    b = SqliteStore(f"{tmp_path / 's.db'}?poll_interval=0.02")
    try:
        watching = asyncio.create_task(collect(b, "/x/", 0, 3))
        await asyncio.sleep(0.05)
        began = time.monotonic()
        kv = await a.create("/x/k", b"1")
        kv2 = await a.update("/x/k", b"2", expected_revision=kv.mod_revision)
        await a.delete("/x/k")
        events = await asyncio.wait_for(watching, 5)
        assert time.monotonic() - began < 1.0
        assert [(e.type, e.kv.value) for e in events] == [("PUT", b"1"), ("PUT", b"2"), ("DELETE", b"2")]
        assert events[0].created and events[1].prev == kv and events[2].prev == kv2
        assert await b.get("/x/k") is None and await b.current_revision() == await a.current_revision()
    finally:
        await a.close()
        await b.close()


async def test_local_and_foreign_writes_interleave_in_revision_order(tmp_path: Path) -> None:
    a = SqliteStore(str(tmp_path / "s.db"), poll_interval=0.01)
    b = SqliteStore(str(tmp_path / "s.db"), poll_interval=0.01)
    try:
        start = await a.current_revision()
        watchers = [asyncio.create_task(collect(s, "/i/", start, 200)) for s in (a, b)]
        await asyncio.sleep(0.02)
        await asyncio.gather(*(s.create(f"/i/{n}/{i}", b"v") for i in range(100) for n, s in (("a", a), ("b", b))))
        for events in await asyncio.wait_for(asyncio.gather(*watchers), 10):
            assert [e.kv.mod_revision for e in events] == list(range(start + 1, start + 201))
    finally:
        await a.close()
        await b.close()


async def test_compaction_by_another_process_ahead_of_the_cursor_drops_watchers(tmp_path: Path) -> None:
    a = SqliteStore(str(tmp_path / "s.db"), poll_interval=60)
    b = SqliteStore(str(tmp_path / "s.db"), poll_interval=60)  # b polls only after its own writes
    try:
        kv = await a.create("/c/k", b"1")
        it = b.watch("/c/", start_revision=0).__aiter__()
        pending = asyncio.ensure_future(it.__anext__())
        await asyncio.sleep(0.02)
        for i in range(3):
            kv = await a.update("/c/k", str(i).encode(), expected_revision=kv.mod_revision)
        await a.compact(await a.current_revision())  # a has published all of it: not clamped
        assert await a.compact_revision() == kv.mod_revision
        await b.create("/other", b"x")  # b's next look at the log finds the hole
        with pytest.raises(WatcherOverflow):
            await asyncio.wait_for(pending, 5)
    finally:
        await a.close()
        await b.close()


async def test_compaction_never_passes_what_this_process_has_published(tmp_path: Path) -> None:
    a = SqliteStore(str(tmp_path / "s.db"), poll_interval=60)
    b = SqliteStore(str(tmp_path / "s.db"), poll_interval=60)
    try:
        mine = await a.create("/p/a", b"1")
        for i in range(3):
            await b.create(f"/p/b{i}", b"1")  # a has not polled these yet
        await a.compact(await a.current_revision())
        assert await a.compact_revision() == mine.mod_revision
    finally:
        await a.close()
        await b.close()


async def test_writer_waits_for_another_process_holding_the_write_lock(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.db"), busy_timeout=10)
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        began = time.monotonic()
        write = asyncio.ensure_future(store.create("/busy", b"x"))
        await asyncio.sleep(0.3)
        assert not write.done()
        other.execute("COMMIT")
        kv = await asyncio.wait_for(write, 5)
        assert kv.mod_revision > 0 and time.monotonic() - began >= 0.3
    finally:
        other.close()
        await store.close()


def test_local_events_follow_the_cursor_only_when_contiguous() -> None:
    def ev(rev: int) -> Event:
        return Event("PUT", KeyValue("/k", b"", rev, rev), None)

    assert follows(4, [ev(5), ev(6)])
    assert not follows(4, [ev(6)])  # another process wrote 5
    assert not follows(4, [ev(5), ev(7)])
    assert not follows(4, [])

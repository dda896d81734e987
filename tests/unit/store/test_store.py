"""The store contract, checked on the SQLite engine (file and in-memory)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kubelite.store import open_store
from kubelite.store.interface import (
    Compacted,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    Store,
    WatcherOverflow,
)


@pytest.fixture(params=["memory", "file"])
async def store(request: pytest.FixtureRequest, tmp_path: Path):
    url = "memory://" if request.param == "memory" else f"sqlite://{tmp_path}/state.db"
    s = open_store(url)
    yield s
    await s.close()


async def test_create_get_update_delete(store: Store) -> None:
    kv = await store.create("/registry/pods/default/a", b"v1")
    assert kv.create_revision == kv.mod_revision > 0
    got = await store.get("/registry/pods/default/a")
    assert got == kv
    kv2 = await store.update("/registry/pods/default/a", b"v2", expected_revision=kv.mod_revision)
    assert kv2.mod_revision > kv.mod_revision and kv2.create_revision == kv.create_revision
    with pytest.raises(RevisionMismatch) as info:
        await store.update("/registry/pods/default/a", b"v3", expected_revision=kv.mod_revision)
    assert info.value.current == kv2
    with pytest.raises(KeyExists):
        await store.create("/registry/pods/default/a", b"again")
    deleted = await store.delete("/registry/pods/default/a")
    assert deleted.value == b"v2"
    assert await store.get("/registry/pods/default/a") is None
    with pytest.raises(KeyNotFound):
        await store.delete("/registry/pods/default/a")
    recreated = await store.create("/registry/pods/default/a", b"new")
    assert recreated.create_revision == recreated.mod_revision > kv2.mod_revision


async def test_list_prefix_limit_continue_and_revision(store: Store) -> None:
    for name in "cab":
        await store.create(f"/registry/pods/ns/{name}", name.encode())
    await store.create("/registry/podsx/ns/z", b"z")  # shares a string prefix, must not leak in
    first = await store.list("/registry/pods/", limit=2)
    assert [kv.key for kv in first.items] == ["/registry/pods/ns/a", "/registry/pods/ns/b"]
    assert first.more
    rest = await store.list("/registry/pods/", limit=2, start_after=first.items[-1].key,
                            revision=first.revision)
    assert [kv.key for kv in rest.items] == ["/registry/pods/ns/c"] and not rest.more
    old_rev = await store.current_revision()
    await store.delete("/registry/pods/ns/a")
    assert await store.count("/registry/pods/") == 2
    past = await store.list("/registry/pods/", revision=old_rev)
    assert [kv.value for kv in past.items] == [b"a", b"b", b"c"]


async def test_concurrent_cas_only_one_wins(store: Store) -> None:
    kv = await store.create("/k", b"0")
    results = await asyncio.gather(
        *(store.update("/k", str(i).encode(), expected_revision=kv.mod_revision) for i in range(20)),
        return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, RevisionMismatch) for r in results if isinstance(r, Exception))


async def test_watch_history_then_live_exactly_once(store: Store) -> None:
    await store.create("/before", b"x")  # start_revision 0 would mean "from now"
    start = await store.current_revision()
    a = await store.create("/w/a", b"1")
    events = []

    async def consume() -> None:
        async for ev in store.watch("/w/", start_revision=start):
            events.append(ev)
            if len(events) == 4:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    await store.update("/w/a", b"2", expected_revision=a.mod_revision)
    await store.create("/other", b"x")
    await store.create("/w/b", b"3")
    await store.delete("/w/a")
    await asyncio.wait_for(task, 5)
    assert [(e.type, e.kv.key) for e in events] == [
        ("PUT", "/w/a"), ("PUT", "/w/a"), ("PUT", "/w/b"), ("DELETE", "/w/a")]
    revs = [e.kv.mod_revision for e in events]
    assert revs == sorted(revs) and len(set(revs)) == 4
    assert events[0].created and events[1].prev is not None and events[1].prev.value == b"1"
    assert events[3].prev is not None and events[3].prev.value == b"2"


async def test_compaction_keeps_state_and_expires_old_watches(store: Store) -> None:
    a = await store.create("/c/a", b"1")
    for i in range(5):
        a = await store.update("/c/a", str(i).encode(), expected_revision=a.mod_revision)
    b = await store.create("/c/b", b"b")
    await store.delete("/c/b")
    rev = await store.current_revision()
    await store.compact(rev)
    assert (await store.get("/c/a")) == a
    assert await store.get("/c/b") is None
    with pytest.raises(Compacted):
        async for _ in store.watch("/c/", start_revision=b.mod_revision - 1):
            pass
    with pytest.raises(Compacted):
        await store.list("/c/", revision=b.mod_revision)
    # a write after compaction still carries its previous value
    seen = []

    async def one() -> None:
        async for ev in store.watch("/c/", start_revision=rev):
            seen.append(ev)
            return

    task = asyncio.create_task(one())
    await store.update("/c/a", b"after", expected_revision=a.mod_revision)
    await asyncio.wait_for(task, 5)
    assert seen[0].prev is not None and seen[0].prev.value == a.value


async def test_slow_watcher_is_dropped_not_blocking(tmp_path: Path) -> None:
    from kubelite.store.sqlite import SqliteStore

    store = SqliteStore(":memory:")
    store._hub._queue_size = 5  # noqa: SLF001 - a tiny queue makes the overflow quick to reach
    it = store.watch("/s/", start_revision=0).__aiter__()
    first = asyncio.ensure_future(it.__anext__())
    await asyncio.sleep(0.01)
    for i in range(50):
        await store.create(f"/s/{i}", b"x")  # writers never wait on the watcher
    await first
    with pytest.raises(WatcherOverflow):
        for _ in range(50):
            await it.__anext__()
    await store.close()


async def test_revisions_survive_restart(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/s.db"
    s = open_store(url)
    kv = await s.create("/r", b"1")
    await s.delete("/r")
    rev = await s.current_revision()
    await s.close()
    s2 = open_store(url)
    again = await s2.create("/r", b"2")
    assert again.mod_revision > rev > kv.mod_revision
    await s2.close()

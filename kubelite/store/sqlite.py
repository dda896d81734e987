"""SQLite backend: one append-only log table where the row id is the revision (kine's design).

Each write appends a row: a create, an update, or a tombstone for a delete. The latest row of a key
is its current state. Reading "as of revision R" means: for each key, the newest row with id <= R,
unless that row is a tombstone.

All database work runs on one dedicated thread that owns the connection. Writes are *group
committed*: the thread takes every write waiting in its queue, applies each inside its own
SAVEPOINT (so a failed compare-and-swap undoes only itself), commits once, and only then resolves
the callers' futures and publishes the events. So a write is acknowledged only after its
transaction is durable (WAL, synchronous=FULL: it survives `kill -9` and power loss), while many
concurrent writers share one fsync.

Several processes may share one database file (several servers, as kine allows for k3s): SQLite
serializes their writers (`BEGIN IMMEDIATE`, waiting up to `busy_timeout` for the write lock), and
each process's `LogPoller` (kubelite/store/sqlite_poll.py) publishes every committed row, from any
process, to that process's watchers in id order. Options ride on the path as a query string:
`sqlite:///shared/state.db?poll_interval=0.05&busy_timeout=30` (seconds).

`memory://` is the same code on an in-memory database, so tests exercise the real engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from kubelite.store.interface import (
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionMismatch,
    StoreError,
    prefix_end,
)
from kubelite.store.sqlite_poll import COLUMNS as ROW
from kubelite.store.sqlite_poll import LogPoller, compact_revision, read_events
from kubelite.store.sqlite_poll import row_kv as _kv
from kubelite.store.watch import WatchHub

T = TypeVar("T")

SCHEMA = ("""
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)

MAX_BATCH = 256
DEFAULT_POLL_INTERVAL = 0.05  # seconds: how soon another process's writes reach this one's watchers
DEFAULT_BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process to release the write lock
BUSY_RETRY = 0.0005  # seconds between attempts to take a lock another process holds
SQLITE_BUSY, SQLITE_LOCKED = 5, 6


class _Job:
    __slots__ = ("fn", "future", "write")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], write: bool) -> None:
        self.fn = fn
        self.write = write
        self.future: Future[Any] = Future()


class SqliteStore:
    def __init__(self, path: str, *, poll_interval: float | None = None,
                 busy_timeout: float | None = None) -> None:
        path, _, query = path.partition("?")
        options = dict(parse_qsl(query))
        self._path = path
        memory = path == ":memory:"
        self._poll_interval = None if memory else float(
            poll_interval or options.get("poll_interval") or DEFAULT_POLL_INTERVAL)
        self._busy_timeout = float(busy_timeout or options.get("busy_timeout") or DEFAULT_BUSY_TIMEOUT)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._hub = WatchHub()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: LogPoller | None = None
        self._thread = threading.Thread(target=self._run, name=f"sqlite:{path}", daemon=True)
        self._ready: Future[None] = Future()
        self._thread.start()
        self._ready.result()

    # ----- the database thread -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # Opening waits in SQLite's busy handler (another process may be switching to WAL or
        # creating the schema); afterwards `_retry_busy` does the waiting (see there for why).
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False,
                               timeout=self._busy_timeout)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute("COMMIT")
            conn.execute("PRAGMA busy_timeout=0")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _run(self) -> None:
        try:
            conn = self._connect()
            self._poller = LogPoller(self._deliver, cursor=_current_revision(conn), interval=self._poll_interval)
        except sqlite3.Error as exc:
            self._ready.set_exception(StoreError(f"cannot open sqlite database {self._path}: {exc}"))
            return
        self._ready.set_result(None)
        poller = self._poller
        while True:
            try:
                job = self._jobs.get(timeout=poller.timeout())
            except queue.Empty:
                poller.poll_if_changed(conn)
                continue
            if job is None:
                break
            if job.write:
                self._run_writes(conn, self._drain_writes(job))
            else:
                self._run_read(conn, job)
            if poller.due():  # a steady stream of jobs must not starve other processes' events
                poller.poll_if_changed(conn)
        conn.close()

    def _deliver(self, events: list[Event], lost: bool) -> None:
        """Hand events to the watchers on the event loop, in the order the poller found them."""
        loop = self._loop
        if loop is None:
            return  # nobody can be watching before the store was first used from a loop
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody left to tell
            if lost:
                loop.call_soon_threadsafe(self._hub.drop_all)
            if events:
                loop.call_soon_threadsafe(self._hub.publish, events)

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        self._retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))

    def _retry_busy(self, fn: Callable[[], T]) -> T:
        """Run `fn`, retrying while another process holds the lock, for up to busy_timeout.

        SQLite's own busy handler sleeps in growing steps (up to 100 ms), while a writer in another
        process releases the lock for microseconds between its transactions: that starves the
        waiter (seen: 750 ms for one write under load). Short fixed sleeps keep waits fair."""
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(BUSY_RETRY)

    def _drain_writes(self, first: _Job) -> list[_Job]:
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None or not job.write:
                self._jobs.put(job)  # keep order: handled after this batch
                break
            batch.append(job)
        return batch

    def _run_read(self, conn: sqlite3.Connection, job: _Job) -> None:
        try:
            job.future.set_result(self._retry_busy(lambda: job.fn(conn)))
        except Exception as exc:  # delivered to the awaiting caller
            job.future.set_exception(_wrap(exc))

    def _run_writes(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, bool, Any]] = []
        try:
            self._begin_immediate(conn)
            for job in batch:
                conn.execute("SAVEPOINT w")
                try:
                    outcomes.append((job, True, job.fn(conn)))
                    conn.execute("RELEASE w")
                except Exception as exc:
                    conn.execute("ROLLBACK TO w")
                    conn.execute("RELEASE w")
                    outcomes.append((job, False, _wrap(exc)))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job in batch:
                job.future.set_exception(StoreError(f"sqlite write failed: {exc}"))
            return
        assert self._poller is not None
        # Published before the futures resolve, so a writer's own watch has its event first.
        self._poller.committed(conn, [r for _, ok, r in outcomes if ok and isinstance(r, Event)])
        for job, ok, result in outcomes:
            (job.future.set_result if ok else job.future.set_exception)(result)

    async def _call(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        job = _Job(fn, write)
        self._jobs.put(job)
        return await asyncio.wrap_future(job.future)  # type: ignore[no-any-return]

    # ----- reads ---------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        return await self._call(lambda c: _latest(c, key, live_only=True))

    async def current_revision(self) -> int:
        return await self._call(_current_revision)

    async def compact_revision(self) -> int:
        return await self._call(compact_revision)

    async def count(self, prefix: str) -> int:
        def run(c: sqlite3.Connection) -> int:
            row = c.execute(
                "SELECT COUNT(*) FROM kv WHERE id IN (SELECT MAX(id) FROM kv WHERE name >= ? AND name < ?"
                " GROUP BY name) AND deleted = 0", (prefix, prefix_end(prefix))).fetchone()
            return int(row[0])
        return await self._call(run)

    async def list(self, prefix: str, *, limit: int = 0, start_after: str = "",
                   revision: int = 0) -> ListResult:
        return await self._call(lambda c: _list(c, prefix, limit, start_after, revision))

    # ----- writes --------------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> KeyValue:
        def run(c: sqlite3.Connection) -> Event:
            if _latest(c, key, live_only=True) is not None:
                raise KeyExists(key)
            rev = _append(c, key, value, created=True, deleted=False, create_rev=0, prev_rev=0)
            return Event("PUT", KeyValue(key, value, rev, rev), None, created=True)
        event = await self._call(run, write=True)
        return event.kv

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        def run(c: sqlite3.Connection) -> Event:
            current = _current_for_write(c, key, expected_revision)
            rev = _append(c, key, value, created=False, deleted=False,
                          create_rev=current.create_revision, prev_rev=current.mod_revision)
            return Event("PUT", KeyValue(key, value, current.create_revision, rev), current)
        event = await self._call(run, write=True)
        return event.kv

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        def run(c: sqlite3.Connection) -> Event:
            current = _current_for_write(c, key, expected_revision)
            rev = _append(c, key, current.value, created=False, deleted=True,
                          create_rev=current.create_revision, prev_rev=current.mod_revision)
            return Event("DELETE", KeyValue(key, current.value, current.create_revision, rev), current)
        event = await self._call(run, write=True)
        return event.prev or event.kv

    async def compact(self, revision: int) -> None:
        def run(c: sqlite3.Connection) -> None:
            # Never compact rows this process has not published yet: its watchers still need them.
            assert self._poller is not None
            _compact(c, min(revision, self._poller.cursor))
        await self._call(run, write=True)

    # ----- watch ---------------------------------------------------------------------------

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[Event]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if start_revision > 0:
            compacted = await self.compact_revision()
            if start_revision < compacted:
                raise Compacted(compacted)
        else:
            # "From now" is the revision the database is at now, which may include other processes'
            # writes the poller has not published yet: those come from history, not lost.
            start_revision = await self.current_revision()

        async def history(after: int) -> list[Event]:
            return await self._call(lambda c: read_events(c, after=after, prefix=prefix))

        async for event in self._hub.watch(prefix, start_revision, history):
            yield event

    async def close(self) -> None:
        self._hub.close()
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _wrap(exc: Exception) -> Exception:
    if isinstance(exc, StoreError):
        return exc
    return StoreError(f"sqlite: {exc}")


def _append(c: sqlite3.Connection, key: str, value: bytes, *, created: bool, deleted: bool,
            create_rev: int, prev_rev: int) -> int:
    cur = c.execute(
        "INSERT INTO kv (name, created, deleted, create_revision, prev_revision, value) VALUES (?,?,?,?,?,?)",
        (key, int(created), int(deleted), create_rev, prev_rev, value))
    rev = int(cur.lastrowid or 0)
    if created:
        c.execute("UPDATE kv SET create_revision = ? WHERE id = ?", (rev, rev))
    return rev


def _current_for_write(c: sqlite3.Connection, key: str, expected_revision: int) -> KeyValue:
    """The live value an update or delete replaces, after the compare-and-swap check."""
    current = _latest(c, key, live_only=True)
    if current is None:
        raise KeyNotFound(key)
    if expected_revision and current.mod_revision != expected_revision:
        raise RevisionMismatch(current)
    return current


def _latest(c: sqlite3.Connection, key: str, *, live_only: bool) -> KeyValue | None:
    row = c.execute(f"SELECT {ROW} FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1", (key,)).fetchone()
    if row is None or (live_only and row[3]):
        return None
    return _kv(row)


def _current_revision(c: sqlite3.Connection) -> int:
    row = c.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kv'").fetchone()
    return int(row[0]) if row else 0


def _list(c: sqlite3.Connection, prefix: str, limit: int, start_after: str, revision: int) -> ListResult:
    current = _current_revision(c)
    if revision > current:
        raise FutureRevision(f"revision {revision} is in the future (current {current})")
    if revision and revision < (compacted := compact_revision(c)):
        raise Compacted(compacted)
    at = revision or current
    low = max(prefix, start_after + "\x00") if start_after else prefix
    sql = (f"SELECT {ROW} FROM kv WHERE id IN (SELECT MAX(id) FROM kv WHERE name >= ? AND name < ?"
           " AND id <= ? GROUP BY name) AND deleted = 0 ORDER BY name")
    params: list[Any] = [low, prefix_end(prefix), at]
    if limit > 0:
        sql += " LIMIT ?"
        params.append(limit + 1)
    rows = c.execute(sql, params).fetchall()
    more = limit > 0 and len(rows) > limit
    return ListResult([_kv(r) for r in (rows[:limit] if more else rows)], at, more)


def _compact(c: sqlite3.Connection, revision: int) -> None:
    """Drop history at or below `revision`, keeping each key's state as of that revision.

    A row goes when a newer row of the same key is also at or below `revision` (it is superseded),
    and tombstones at or below `revision` go once nothing older of their key remains. The newest
    row of a key at or below `revision` stays, because a later row's prev_revision points at it.
    """
    revision = min(revision, _current_revision(c))
    if revision <= compact_revision(c):
        return
    c.execute("DELETE FROM kv WHERE id <= ? AND id < (SELECT MAX(k2.id) FROM kv k2"
              " WHERE k2.name = kv.name AND k2.id <= ?)", (revision, revision))
    c.execute("DELETE FROM kv WHERE id <= ? AND deleted = 1", (revision,))
    c.execute("INSERT INTO meta (key, value) VALUES ('compact_revision', ?)"
              " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (revision,))

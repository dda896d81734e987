"""Cross-process watch for the SQLite store: every committed row is published, in id order, once.

Several servers may share one database file (kine's design for k3s with several servers). Each
store keeps a cursor: the highest row id it has published to its watchers. The poller reads rows
with id > cursor, from any process, and publishes them in id order. That is complete and ordered
because SQLite has one writer at a time and assigns ids inside the write transaction: a row that
becomes visible always has a larger id than every row visible before it, so "id > cursor" never
skips a row that commits later (tests/unit/store/test_multiprocess.py checks this across processes).

When it runs (always on the store's database thread, which owns the connection):
- after a local commit: if the batch's rows directly follow the cursor (no other process wrote in
  between), they are published as they are, with no extra query, so a single server pays nothing;
  otherwise the poller reads from the database;
- periodically (`interval`), to pick up other processes' writes; `PRAGMA data_version` tells
  whether any other connection committed since the last look, so an idle poll reads no table.

If another process compacted history the cursor had not reached yet, rows may be gone: every
watcher is dropped (its client re-lists) instead of silently missing events.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from kubelite.store.interface import Event, KeyValue, prefix_end

log = logging.getLogger(__name__)

COLUMNS = "id, name, created, deleted, create_revision, prev_revision, value"
# Each row with the row its prev_revision points at, in one statement (one consistent snapshot).
EVENTS_SQL = (
    "SELECT k.id, k.name, k.created, k.deleted, k.create_revision, k.prev_revision, k.value,"
    " p.id, p.name, p.created, p.deleted, p.create_revision, p.prev_revision, p.value"
    " FROM kv k LEFT JOIN kv p ON p.id = k.prev_revision")
PAGE = 1000

# deliver(events, lost): publish `events`; lost=True means history before them may be missing.
Deliver = Callable[[list[Event], bool], None]


def row_kv(row: tuple[Any, ...]) -> KeyValue:
    return KeyValue(key=row[1], value=bytes(row[6]), create_revision=row[4], mod_revision=row[0])


def row_event(row: tuple[Any, ...]) -> Event:
    """A row of EVENTS_SQL as the event its write produced."""
    prev = row_kv(row[7:]) if row[7] is not None else None
    return Event("DELETE" if row[3] else "PUT", row_kv(row), prev, created=bool(row[2]))


def read_events(c: sqlite3.Connection, *, after: int, prefix: str = "", limit: int = 0) -> list[Event]:
    sql = EVENTS_SQL + " WHERE k.id > ?"
    params: list[Any] = [after]
    if prefix:
        sql += " AND k.name >= ? AND k.name < ?"
        params += [prefix, prefix_end(prefix)]
    sql += " ORDER BY k.id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return [row_event(r) for r in c.execute(sql, params).fetchall()]


def follows(cursor: int, events: list[Event]) -> bool:
    """True when `events` are exactly the rows cursor+1, cursor+2, ...: nothing else to read."""
    return bool(events) and all(e.kv.mod_revision == cursor + i for i, e in enumerate(events, 1))


def compact_revision(c: sqlite3.Connection) -> int:
    row = c.execute("SELECT value FROM meta WHERE key = 'compact_revision'").fetchone()
    return int(row[0]) if row else 0


class LogPoller:
    """Owned by the database thread; `deliver` must only hand events over (it runs on that thread)."""

    def __init__(self, deliver: Deliver, *, cursor: int, interval: float | None) -> None:
        self.cursor = cursor
        self.interval = interval  # None: nobody else can write (in-memory database), never poll
        self._deliver = deliver
        self._data_version = -1
        self._next_poll = time.monotonic() + (interval or 0.0)

    def timeout(self) -> float | None:
        """How long the database thread may wait for work before the next periodic poll."""
        if self.interval is None:
            return None
        return max(0.0, self._next_poll - time.monotonic())

    def due(self) -> bool:
        return self.interval is not None and time.monotonic() >= self._next_poll

    def committed(self, c: sqlite3.Connection, events: list[Event]) -> None:
        """After a local commit: publish its events, reading from the database only if needed."""
        if not events:
            return
        if follows(self.cursor, events):
            self.cursor = events[-1].kv.mod_revision
            self._deliver(events, False)
        else:
            self.poll(c)

    def poll_if_changed(self, c: sqlite3.Connection) -> None:
        try:
            version = int(c.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error as exc:
            log.warning("sqlite poll failed, will retry: %s", exc)
            return
        if version != self._data_version:
            self._data_version = version
            self.poll(c)
        else:
            self._schedule()

    def poll(self, c: sqlite3.Connection) -> None:
        """Publish every row with id > cursor, in id order, a page per read transaction."""
        self._schedule()
        try:
            while self._poll_page(c):
                pass
        except sqlite3.Error as exc:
            log.warning("sqlite poll failed, will retry: %s", exc)
            if c.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    c.execute("ROLLBACK")

    def _poll_page(self, c: sqlite3.Connection) -> bool:
        c.execute("BEGIN")
        try:
            compacted = compact_revision(c)
            events = read_events(c, after=self.cursor, limit=PAGE)
        finally:
            c.execute("COMMIT")
        lost = compacted > self.cursor
        if lost:
            log.warning("history up to revision %d was compacted before this server published it;"
                        " dropping watchers so their clients re-list", compacted)
        if events or lost:
            self.cursor = max(compacted, events[-1].kv.mod_revision if events else 0, self.cursor)
            self._deliver(events, lost)
        return len(events) == PAGE

    def _schedule(self) -> None:
        if self.interval is not None:
            self._next_poll = time.monotonic() + self.interval

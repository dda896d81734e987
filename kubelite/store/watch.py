"""Watch fan-out shared by the store backends.

A backend publishes each committed batch of events, in revision order, on the event loop. Every
watcher owns a bounded queue; `publish` never waits: a watcher whose queue is full is marked
overflowed and its iterator raises `WatcherOverflow` (the client re-lists), so one slow reader can
never stall writers or other watchers.

Replaying history and switching to live events without a gap or a duplicate: the watcher is
registered *before* history is read, and live events at or below the last replayed revision are
skipped.

Several processes may share one database (kubelite/store/sqlite_poll.py): their events arrive through
`publish` like local ones. When a backend can no longer guarantee a gap-free stream (another
process compacted history this one had not published yet), `drop_all` ends every watch with
`WatcherOverflow`, the same signal as a slow reader: the client re-lists.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from kubelite.store.interface import Event, WatcherOverflow

DEFAULT_QUEUE_SIZE = 10_000


class _Watcher:
    def __init__(self, prefix: str, maxsize: int) -> None:
        self.prefix = prefix
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.drop()

    def drop(self) -> None:
        if self.overflowed:
            return
        self.overflowed = True
        # Whatever is queued can no longer be trusted to be complete: only the marker stays.
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class WatchHub:
    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._watchers: set[_Watcher] = set()
        self._queue_size = queue_size
        self.closed = False

    def publish(self, events: list[Event]) -> None:
        for watcher in list(self._watchers):
            for event in events:
                if event.kv.key.startswith(watcher.prefix):
                    watcher.offer(event)

    def drop_all(self) -> None:
        for watcher in list(self._watchers):
            watcher.drop()

    def close(self) -> None:
        self.closed = True
        for watcher in self._watchers:
            with contextlib.suppress(asyncio.QueueFull):
                watcher.queue.put_nowait(None)

    async def watch(self, prefix: str, start_revision: int,
                    history: Callable[[int], Awaitable[list[Event]]]) -> AsyncIterator[Event]:
        """Yield events under `prefix` with revision > start_revision: history first, then live."""
        watcher = _Watcher(prefix, self._queue_size)
        self._watchers.add(watcher)
        try:
            last = start_revision
            if start_revision > 0:
                for event in await history(start_revision):
                    last = event.kv.mod_revision
                    yield event
            while True:
                live = await watcher.queue.get()
                if live is None:
                    if watcher.overflowed:
                        raise WatcherOverflow("watcher fell behind and was dropped")
                    return
                if live.kv.mod_revision > last:
                    last = live.kv.mod_revision
                    yield live
        finally:
            self._watchers.discard(watcher)

    def __len__(self) -> int:
        return len(self._watchers)

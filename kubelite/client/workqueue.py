"""A work queue of keys with the guarantees controllers rely on (client-go's workqueue):

- a key waiting in the queue is there once, however often it was added (deduplication);
- a key is never handed to two workers at once: adding a key that is being processed marks it
  dirty, and it is queued again when its worker calls `done`;
- failed keys come back after a per-key exponential backoff (5 ms doubling, capped), reset by
  `forget` after a success.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

BASE_DELAY = 0.005
MAX_DELAY = 300.0


class ShutDown(Exception):
    pass


class WorkQueue:
    def __init__(self, name: str = "queue", *, base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY) -> None:
        self.name = name
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._wakeup = asyncio.Event()
        self._shutting_down = False
        self.base_delay, self.max_delay = base_delay, max_delay

    def add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._wakeup.set()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        existing = self._timers.get(key)
        when = asyncio.get_running_loop().time() + delay
        if existing is not None and existing.when() <= when:
            return  # an earlier wake-up is already scheduled
        if existing is not None:
            existing.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: str) -> None:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        self.add_after(key, min(self.base_delay * (2 ** failures), self.max_delay))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> str:
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            self._wakeup.clear()
            await self._wakeup.wait()
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wakeup.set()

    def shutdown(self) -> None:
        self._shutting_down = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._wakeup.set()

    def __len__(self) -> int:
        return len(self._queue)


async def run_workers(queue: WorkQueue, sync: Callable[[str], Awaitable[None]], *, workers: int = 1) -> None:
    """Process keys until the queue shuts down; a failing sync is retried with backoff."""

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            try:
                await sync(key)
                queue.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                level = logging.DEBUG if queue.failures(key) < 3 else logging.WARNING
                log.log(level, "%s: syncing %s failed (retrying): %s", queue.name, key, exc)
                queue.add_rate_limited(key)
            finally:
                queue.done(key)

    await asyncio.gather(*(worker() for _ in range(workers)))

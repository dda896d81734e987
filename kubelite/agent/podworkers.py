"""Pod workers: each pod is synced by its own task, one sync at a time, pods in parallel
(upstream's podWorkers).

Updates for a pod coalesce: a worker always syncs the latest pod it was given, and an update that
arrives during a sync makes the worker go round once more. A sync returns a delay to be synced
again after (readiness coming due), or None. A failed sync is retried with exponential backoff,
at once if a newer update arrives. A worker exists only while its pod has work or a pending
retry; a deleted pod's worker goes once its final sync succeeded, so thousands of idle pods cost
no tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SyncFunc = Callable[[Obj, bool], Awaitable[float | None]]

BASE_BACKOFF = 0.2
MAX_BACKOFF = 30.0


@dataclass
class _Slot:
    pod: Obj
    deleted: bool = False
    pending: bool = True
    failures: int = 0
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None


class PodWorkers:
    def __init__(self, sync: SyncFunc, *, name: str = "pods", max_backoff: float = MAX_BACKOFF) -> None:
        self._sync = sync
        self.name = name
        self.max_backoff = max_backoff
        self._slots: dict[str, _Slot] = {}
        self._stopped = False

    def update(self, uid: str, pod: Obj, *, deleted: bool = False) -> None:
        """Hand the worker of pod `uid` its latest state (deleted: gone from the API)."""
        if self._stopped:
            return
        slot = self._slots.get(uid)
        if slot is None:
            slot = self._slots[uid] = _Slot(pod, deleted)
        else:
            slot.pod, slot.deleted, slot.pending = pod, slot.deleted or deleted, True
        self._cancel_timer(slot)
        self._ensure_running(uid, slot)

    def resync(self, uid: str) -> None:
        """Sync pod `uid` again with the state it has (e.g. the node got its pod CIDR)."""
        slot = self._slots.get(uid)
        if slot is not None:
            self.update(uid, slot.pod, deleted=slot.deleted)

    def known(self) -> list[str]:
        return list(self._slots)

    def pod(self, uid: str) -> Obj | None:
        slot = self._slots.get(uid)
        return slot.pod if slot else None

    def busy(self) -> int:
        return sum(1 for s in self._slots.values() if s.task is not None)

    def _ensure_running(self, uid: str, slot: _Slot) -> None:
        if slot.task is None:
            slot.task = asyncio.get_running_loop().create_task(self._run(uid, slot), name=f"{self.name}:{uid}")

    async def _run(self, uid: str, slot: _Slot) -> None:
        delay: float | None = None
        while slot.pending and not self._stopped:
            slot.pending = False
            pod, deleted = slot.pod, slot.deleted
            try:
                delay = await self._sync(pod, deleted)
                slot.failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                slot.failures += 1
                delay = min(BASE_BACKOFF * 2 ** (slot.failures - 1), self.max_backoff)
                level = logging.DEBUG if slot.failures < 4 else logging.WARNING
                log.log(level, "%s: syncing pod %s failed (retry in %.1fs): %s", self.name, uid, exc, delay)
        slot.task = None
        if self._stopped:
            return
        if slot.deleted and delay is None and not slot.pending:
            self._slots.pop(uid, None)
        elif delay is not None and not slot.pending:
            slot.timer = asyncio.get_running_loop().call_later(delay, self._fire, uid, slot)

    def _fire(self, uid: str, slot: _Slot) -> None:
        slot.timer = None
        if self._slots.get(uid) is slot and not self._stopped:
            slot.pending = True
            self._ensure_running(uid, slot)

    @staticmethod
    def _cancel_timer(slot: _Slot) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None

    async def stop(self) -> None:
        self._stopped = True
        tasks = [s.task for s in self._slots.values() if s.task is not None]
        for slot in self._slots.values():
            self._cancel_timer(slot)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._slots.clear()

"""Recording core/v1 Events about objects, so `kubectl describe` tells what components did.

Like client-go's recorder, repeats of the same (object, type, reason, message) within the
aggregation window update one Event (count, lastTimestamp) instead of creating new ones. Recording
never raises and never blocks its caller: events are written by a background task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubelite.client.rest import Client

log = logging.getLogger(__name__)

Obj = dict[str, Any]
AGGREGATION_WINDOW = 600.0
MAX_PENDING = 10_000
WRITERS = 4


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, client: Client, *, component: str, host: str = "") -> None:
        self.client = client
        self.component = component
        self.host = host
        self._recent: dict[tuple[str, ...], tuple[Obj, float]] = {}
        self._queues: list[asyncio.Queue[tuple[Obj, str, str, str]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def record(self, obj: Obj, event_type: str, reason: str, message: str) -> None:
        """Queue an event about `obj` (Normal or Warning); returns at once."""
        if not self._queues:
            self._queues = [asyncio.Queue(MAX_PENDING // WRITERS) for _ in range(WRITERS)]
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._drain(q), name=f"events:{self.component}:{i}")
                           for i, q in enumerate(self._queues)]
        # one writer per object: its repeats aggregate in order, different objects go in parallel
        queue = self._queues[hash((obj.get("metadata") or {}).get("uid", "")) % WRITERS]
        try:
            queue.put_nowait((obj, event_type, reason, message))
        except asyncio.QueueFull:
            log.warning("dropping event %s for %s: too many pending", reason, obj.get("metadata", {}).get("name"))

    async def _drain(self, queue: asyncio.Queue[tuple[Obj, str, str, str]]) -> None:
        while True:
            obj, event_type, reason, message = await queue.get()
            try:
                await self._write(obj, event_type, reason, message)
            except Exception as exc:  # events are best effort, as upstream
                log.debug("could not record event %s: %s", reason, exc)

    async def _write(self, obj: Obj, event_type: str, reason: str, message: str) -> None:
        from kubelite.client.resources import EVENTS

        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid", ""), event_type, reason, message)
        now = _now()
        previous = self._recent.get(key)
        if previous is not None and time.monotonic() - previous[1] < AGGREGATION_WINDOW:
            event = previous[0]
            patch = {"count": int(event.get("count") or 1) + 1, "lastTimestamp": now}
            updated = await self.client.patch(EVENTS, event["metadata"]["name"], patch, namespace)
            self._recent[key] = (updated, time.monotonic())
            return
        event = {
            # named as upstream's recorder does (object name + hex nanoseconds): the list order, which
            # kubectl keeps for events of the same second, is then the order they happened in
            "metadata": {"name": f"{meta.get('name')}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": _reference(obj), "reason": reason, "message": message, "type": event_type,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "reportingComponent": self.component, "reportingInstance": self.host,
        }
        created = await self.client.create(EVENTS, event, namespace)
        self._recent[key] = (created, time.monotonic())
        if len(self._recent) > MAX_PENDING:
            self._recent.pop(next(iter(self._recent)))

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until queued events are written (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while any(not q.empty() for q in self._queues) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()


def _reference(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"), "name": meta.get("name"),
           "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return {k: v for k, v in ref.items() if v}

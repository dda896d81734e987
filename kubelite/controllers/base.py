"""What every controller is: informers feed a work queue of keys; `sync(key)` does all the work.

Level-triggered, as upstream's controllers: event handlers only turn an event into a key and
enqueue it; `sync` reads the current state from the informer caches and makes the world match it.
A key is never synced twice at once (the work queue guarantees it) and a failed sync is retried
with backoff. Subclasses set `name`, register their handlers in `setup`, and implement `sync`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

from kubelite.client import Client, Handlers, InformerFactory, WorkQueue, object_key, run_workers
from kubelite.client.events import EventRecorder

Obj = dict[str, Any]


class Controller:
    name: ClassVar[str] = "controller"
    workers: ClassVar[int] = 2

    def __init__(self, client: Client, informers: InformerFactory, *, options: Any = None) -> None:
        self.client = client
        self.informers = informers
        self.options = options
        self.queue = WorkQueue(self.name)
        self.events = EventRecorder(client, component=self.name_for_events())
        self.log = logging.getLogger(f"kubelite.controllers.{self.name}")
        self.setup()

    def name_for_events(self) -> str:
        return f"{self.name}-controller"

    def setup(self) -> None:
        """Register informer handlers (and indexes). Called once from __init__."""

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        await run_workers(self.queue, self.sync, workers=self.workers)

    def stop(self) -> None:
        self.queue.shutdown()

    # ----- helpers for handlers --------------------------------------------------------------------

    def enqueue(self, obj: Obj) -> None:
        self.queue.add(object_key(obj))

    def enqueue_handlers(self, key_of: Callable[[Obj], str | None] | None = None) -> Handlers:
        """Handlers that enqueue the object's key (or the key `key_of` maps it to) on any change."""
        def add(obj: Obj) -> None:
            key = key_of(obj) if key_of else object_key(obj)
            if key:
                self.queue.add(key)

        return Handlers(on_add=add, on_update=lambda old, new: add(new), on_delete=add)


def owner_key(obj: Obj, kind: str) -> str | None:
    """`namespace/name` of the object's controlling owner of `kind`, if it has one."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            ns = obj["metadata"].get("namespace")
            return f"{ns}/{ref['name']}" if ns else str(ref["name"])
    return None


def split_key(key: str) -> tuple[str | None, str]:
    namespace, _, name = key.rpartition("/")
    return (namespace or None), name

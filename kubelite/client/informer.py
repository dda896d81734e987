"""Informers: a local cache of one resource kept current by list + watch (client-go's
SharedInformer), with event handlers and secondary indexes.

Loop: list (fill the cache, reporting adds/updates/deletes against what was cached), then watch from
the list's resourceVersion; a watch that ends normally is resumed from the last event or bookmark;
a 410 Expired (history compacted) or any error re-lists after a short backoff. Handlers must be
quick and never block: controllers only enqueue keys in them.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubelite.client.rest import Client
from kubelite.objects.errors import Gone, StatusError
from kubelite.objects.registry import ResourceType

log = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], list[str]]

RELIST_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else str(meta["name"])


@dataclass
class Handlers:
    on_add: Callable[[Obj], None] | None = None
    on_update: Callable[[Obj, Obj], None] | None = None
    on_delete: Callable[[Obj], None] | None = None


@dataclass
class _Index:
    func: IndexFunc
    values: dict[str, set[str]] = field(default_factory=dict)
    by_key: dict[str, list[str]] = field(default_factory=dict)  # so a re-index touches only its own values


class Informer:
    def __init__(self, client: Client, rt: ResourceType, *, namespace: str | None = None,
                 label_selector: str = "", field_selector: str = "", watch_timeout: int = 300) -> None:
        self.client, self.rt, self.namespace = client, rt, namespace
        self.label_selector, self.field_selector = label_selector, field_selector
        self.watch_timeout = watch_timeout
        self.cache: dict[str, Obj] = {}
        self._handlers: list[Handlers] = []
        self._indexes: dict[str, _Index] = {}
        self.synced = asyncio.Event()
        self.resource_version = ""
        self.relists = 0

    # ----- registration and reads ----------------------------------------------------------------

    def add_handlers(self, handlers: Handlers) -> None:
        self._handlers.append(handlers)
        for obj in self.cache.values():  # a late handler still sees every object once
            if handlers.on_add:
                handlers.on_add(obj)

    def add_index(self, name: str, func: IndexFunc) -> None:
        index = _Index(func)
        for key, obj in self.cache.items():
            self._index_add(index, key, obj)
        self._indexes[name] = index

    def get(self, key: str) -> Obj | None:
        return self.cache.get(key)

    def list(self) -> list[Obj]:
        return list(self.cache.values())

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        keys = self._indexes[name].values.get(value, set())
        return [self.cache[k] for k in sorted(keys) if k in self.cache]

    async def wait_synced(self) -> None:
        await self.synced.wait()

    # ----- the list/watch loop -------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._list()
                failures = 0
                await self._watch_until_expired()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = RELIST_BACKOFF[min(failures, len(RELIST_BACKOFF) - 1)]
                failures += 1
                level = logging.DEBUG if isinstance(exc, Gone) else logging.WARNING
                log.log(level, "informer %s: %s; re-listing in %.1fs", self.rt.group_resource, exc, delay)
                await asyncio.sleep(delay)

    async def _list(self) -> None:
        self.relists += 1
        listed = await self.client.list(self.rt, self.namespace, label_selector=self.label_selector,
                                        field_selector=self.field_selector)
        fresh = {}
        for item in listed.get("items") or []:
            item.setdefault("apiVersion", self.rt.api_version)
            item.setdefault("kind", self.rt.kind)
            fresh[object_key(item)] = item
        for key in [k for k in self.cache if k not in fresh]:
            self._apply("DELETED", self.cache[key])
        for obj in fresh.values():
            self._apply("ADDED", obj)
        self.resource_version = listed["metadata"]["resourceVersion"]
        self.synced.set()

    async def _watch_until_expired(self) -> None:
        while True:
            async for event in self.client.watch(self.rt, self.namespace, resource_version=self.resource_version,
                                                 label_selector=self.label_selector,
                                                 field_selector=self.field_selector,
                                                 timeout_seconds=self.watch_timeout):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise _watch_error(obj)
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if kind != "BOOKMARK":
                    self._apply(str(kind), obj)
                if rv:
                    self.resource_version = rv

    def _apply(self, kind: str, obj: Obj) -> None:
        key = object_key(obj)
        old = self.cache.get(key)
        if kind == "DELETED":
            if old is None:
                return
            self.cache.pop(key)
            self._reindex(key, None)
            self._notify(lambda h: h.on_delete and h.on_delete(obj))
            return
        if old is not None and old.get("metadata", {}).get("resourceVersion") == \
                obj.get("metadata", {}).get("resourceVersion"):
            return  # re-list of an unchanged object
        self.cache[key] = obj
        self._reindex(key, obj)
        if old is None:
            self._notify(lambda h: h.on_add and h.on_add(obj))
        else:
            self._notify(lambda h: h.on_update and h.on_update(old, obj))

    def _notify(self, call: Callable[[Handlers], Any]) -> None:
        for handlers in self._handlers:
            try:
                call(handlers)
            except Exception:
                log.exception("informer %s: event handler failed", self.rt.group_resource)

    def _reindex(self, key: str, obj: Obj | None) -> None:
        for index in self._indexes.values():
            for value in index.by_key.pop(key, []):
                keys = index.values.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index.values[value]
            if obj is not None:
                self._index_add(index, key, obj)

    def _index_add(self, index: _Index, key: str, obj: Obj) -> None:
        values = index.func(obj)
        index.by_key[key] = values
        for value in values:
            index.values.setdefault(value, set()).add(key)


def _watch_error(status: Obj) -> StatusError:
    if status.get("code") == 410:
        return Gone(str(status.get("message") or "watch expired"))
    from kubelite.objects.errors import InternalError

    return InternalError(str(status.get("message") or "watch error"))


class InformerFactory:
    """One informer per resource, shared by every controller in the process."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[ResourceType, Informer] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def informer(self, rt: ResourceType) -> Informer:
        if rt not in self._informers:
            self._informers[rt] = Informer(self.client, rt)
        return self._informers[rt]

    def start(self) -> None:
        for rt, informer in self._informers.items():
            if not any(t.get_name() == f"informer:{rt.group_resource}" for t in self._tasks):
                self._tasks.append(asyncio.create_task(informer.run(), name=f"informer:{rt.group_resource}"))

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.wait_synced() for i in self._informers.values()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

"""Watch over HTTP: a chunked stream of `{"type": ..., "object": ...}` lines.

Start point, as upstream:
- resourceVersion unset or "0" (or sendInitialEvents=true): synthetic ADDED events for every
  current object, then changes after that snapshot; with sendInitialEvents a BOOKMARK annotated
  `k8s.io/initial-events-end` marks the end of the initial state;
- resourceVersion N: every change after N; if N is compacted, one ERROR event with a 410 Status.

Bookmarks carry the revision of the last event delivered (never a revision whose event might still
be in flight), so a client resuming from a bookmark misses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from kubelite.api.codec import View, dumps
from kubelite.api.objectmeta import Obj
from kubelite.api.query import Filter, Query, flag, int_param
from kubelite.api.storage import ListOptions, ResourceStorage, WatchEvent
from kubelite.objects.errors import BadRequest, StatusError

BOOKMARK_INTERVAL = 10.0
DEFAULT_TIMEOUT = 1800
_END = object()


class WatchStream:
    def __init__(self, request: web.Request, storage: ResourceStorage, namespace: str | None,
                 flt: Filter, query: Query, render: Callable[[Obj, bool], Obj]) -> None:
        self.request = request
        self.storage = storage
        self.namespace = namespace
        self.flt = flt
        self.query = query
        self.render = render  # (object, first) -> the object as the client's view wants it
        self.first = True
        self.last_revision = 0

    async def serve(self) -> web.StreamResponse:
        timeout = int_param(self.query, "timeoutSeconds", DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT
        bookmarks = flag(self.query, "allowWatchBookmarks")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(self.request)
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(timeout):
                await self._stream(response, bookmarks)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.write_eof()
        return response

    async def _stream(self, response: web.StreamResponse, bookmarks: bool) -> None:
        try:
            start = await self._initial_events(response)
        except StatusError as exc:
            await self._send(response, "ERROR", exc.to_status())
            return
        events: asyncio.Queue[Any] = asyncio.Queue()
        pump = asyncio.create_task(self._pump(start, events))
        try:
            await self._relay(response, events, bookmarks)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump

    async def _initial_events(self, response: web.StreamResponse) -> int:
        rv = self.query.get("resourceVersion", "")
        send_initial = self.query.get("sendInitialEvents")
        if send_initial not in (None, "", "true", "false"):
            raise BadRequest("sendInitialEvents must be true or false")
        if rv and not rv.isdigit():
            raise BadRequest(f'invalid resourceVersion "{rv}": it must be a decimal number')
        if rv not in ("", "0") and send_initial != "true":
            self.last_revision = int(rv)
            return int(rv)
        page = await self.storage.list(self.namespace, ListOptions(matches=self.flt.matches))
        for obj in page.items:
            await self._send(response, "ADDED", self.render(obj, self._take_first()))
        revision = int(page.resource_version)
        self.last_revision = revision
        if send_initial == "true":
            await self._send(response, "BOOKMARK", self._bookmark(initial_end=True))
        return revision

    async def _pump(self, start: int, out: asyncio.Queue[Any]) -> None:
        try:
            async for event in self.storage.watch(self.namespace, start_revision=start,
                                                  matches=self.flt.matches):
                await out.put(event)
        except StatusError as exc:
            await out.put(exc)
        except Exception as exc:  # the store dropped this watcher: the client re-lists
            await out.put(exc)
        await out.put(_END)

    async def _relay(self, response: web.StreamResponse, events: asyncio.Queue[Any], bookmarks: bool) -> None:
        while True:
            try:
                item = await asyncio.wait_for(events.get(), BOOKMARK_INTERVAL)
            except TimeoutError:
                if bookmarks:
                    await self._send(response, "BOOKMARK", self._bookmark())
                continue
            if item is _END:
                return
            if isinstance(item, StatusError):
                await self._send(response, "ERROR", item.to_status())
                return
            if isinstance(item, Exception):
                await self._send(response, "ERROR", _dropped_status())
                return
            assert isinstance(item, WatchEvent)
            self.last_revision = item.revision
            await self._send(response, item.type, self.render(item.object, self._take_first()))

    def _take_first(self) -> bool:
        first, self.first = self.first, False
        return first

    def _bookmark(self, *, initial_end: bool = False) -> Obj:
        rt = self.storage.rt
        metadata: Obj = {"resourceVersion": str(self.last_revision)}
        if initial_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": metadata}

    async def _send(self, response: web.StreamResponse, kind: str, obj: Obj) -> None:
        await response.write(dumps({"type": kind, "object": obj}) + b"\n")


def _dropped_status() -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "watch fell too far behind and was closed; re-list and watch again",
            "reason": "Expired", "code": 410}


def table_renderer(view: View, rt: Any) -> Callable[[Obj, bool], Obj]:
    """How watch events render an object for the client's Accept view."""
    if view.kind == "Table":
        from kubelite.objects.tables import to_table

        def as_table(obj: Obj, first: bool) -> Obj:
            table = to_table(rt, [obj], include_object=view.include_object)
            if not first:
                table["columnDefinitions"] = []
            return table
        return as_table
    if view.kind.startswith("PartialObjectMetadata"):
        from kubelite.objects.tables import to_partial_object_metadata

        return lambda obj, first: to_partial_object_metadata(obj)
    return lambda obj, first: obj

"""Blob endpoints: GET/HEAD/DELETE `/v2/<name>/blobs/<digest>`, and uploads: POST
`/v2/<name>/blobs/uploads/` (a session, a single-request monolithic upload with `?digest=`, or a
cross-repository mount with `?mount=&from=`), then GET/PATCH/PUT/DELETE on the session's URL.

Each handler takes the registry's shared state, the request and its parsed route, and returns a
response or raises `RegistryError`; `server.py` renders the errors. Upload requests on one session
are serialised by its lock, and a session finished or cancelled while a request waited for the
lock is BLOB_UPLOAD_UNKNOWN to that request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from aiohttp import web

from kubelite.images.registry.rules import (
    RegistryError,
    Route,
    check_chunk,
    check_name,
    parse_content_range,
    parse_digest,
    range_header,
)
from kubelite.images.registry.uploads import Upload

if TYPE_CHECKING:
    from kubelite.images.registry.server import Registry


async def blob(registry: Registry, request: web.Request, route: Route) -> web.StreamResponse:
    digest = parse_digest(route.arg)
    if request.method == "DELETE":
        async with registry.lock:
            if not await asyncio.to_thread(registry.storage.unlink_blob, route.name, digest):
                raise RegistryError("BLOB_UNKNOWN", {"digest": str(digest)})
        return web.Response(status=202, headers={"Docker-Content-Digest": str(digest)})
    path = await asyncio.to_thread(registry.storage.linked_blob, route.name, digest)
    if path is None:
        raise RegistryError("BLOB_UNKNOWN", {"digest": str(digest)})
    # FileResponse answers HEAD and Range requests itself and sends the file with sendfile.
    return web.FileResponse(path, headers={"Docker-Content-Digest": str(digest),
                                           "Content-Type": "application/octet-stream"})


async def start_upload(registry: Registry, request: web.Request, route: Route) -> web.StreamResponse:
    query = request.query
    if "mount" in query:
        mounted = await _mount(registry, route.name, query["mount"], query.get("from", ""))
        if mounted is not None:
            return mounted
    if "digest" in query:  # the whole blob in this one request
        digest = parse_digest(query["digest"])
        upload = await registry.uploads.start(route.name)
        try:
            async with upload.lock:
                await registry.uploads.append(upload, request.content)
        except BaseException:
            await registry.uploads.cancel(upload)
            raise
        await registry.uploads.finish(upload, digest)
        return _created(route.name, str(digest))
    upload = await registry.uploads.start(route.name)
    return web.Response(status=202, headers=_progress(upload))


async def _mount(registry: Registry, name: str, mount: str, source: str) -> web.StreamResponse | None:
    """Link a blob `source` holds into `name` (201); None when it cannot, and a session starts instead."""
    digest = parse_digest(mount)
    if not source:
        return None
    check_name(source)
    if await asyncio.to_thread(registry.storage.linked_blob, source, digest) is None:
        return None
    await asyncio.to_thread(registry.storage.link_blob, name, digest)
    return _created(name, str(digest))


async def upload(registry: Registry, request: web.Request, route: Route) -> web.StreamResponse:
    async with _session(registry, route) as session:
        if request.method == "GET":
            return web.Response(status=204, headers=_progress(session))
        if request.method == "DELETE":
            await registry.uploads.cancel(session)
            return web.Response(status=204)
        if request.method == "PATCH":
            await _receive(registry, request, session)
            return web.Response(status=202, headers=_progress(session))
        # PUT: an optional last chunk, then the digest of the whole blob decides.
        if "digest" not in request.query:
            raise RegistryError("DIGEST_INVALID", message="the closing PUT needs ?digest=<digest of the whole blob>")
        digest = parse_digest(request.query["digest"])
        if request.content_length or request.headers.get("Transfer-Encoding", "").lower() == "chunked":
            await _receive(registry, request, session)
        await registry.uploads.finish(session, digest)
        return _created(route.name, str(digest))


@asynccontextmanager
async def _session(registry: Registry, route: Route) -> AsyncIterator[Upload]:
    session = await registry.uploads.get(route.name, route.arg)
    async with session.lock:
        if registry.uploads.active.get(session.id) is not session:  # finished while we waited
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", {"name": route.name, "uuid": route.arg})
        yield session


async def _receive(registry: Registry, request: web.Request, session: Upload) -> None:
    """Append the body as the next chunk; a Content-Range must continue the upload exactly."""
    content_range = request.headers.get("Content-Range")
    span = None
    if content_range:
        span = parse_content_range(content_range)
        try:
            check_chunk(*span, offset=session.size, length=request.content_length)
        except RegistryError as e:
            e.headers.update(_progress(session))
            raise
    before = session.size
    added = await registry.uploads.append(session, request.content)
    if span is not None and added != span[1] - span[0] + 1:  # a chunked body that disagreed with its range
        await registry.uploads.truncate(session, before)
        raise RegistryError("SIZE_INVALID", {"Content-Range": content_range, "received": added},
                            headers=_progress(session))


def _progress(session: Upload) -> dict[str, str]:
    return {"Location": session.location, "Range": range_header(session.size),
            "Docker-Upload-UUID": session.id}


def _created(name: str, digest: str) -> web.Response:
    return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest})

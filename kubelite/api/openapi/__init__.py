"""The OpenAPI endpoints kubectl reads: /openapi/v2 (Swagger 2.0) and /openapi/v3 (index + one
OpenAPI 3.0 document per group-version), generated from the registry and the upstream type schemas.

HTTP behaviour follows kube-openapi's handlers:

- `/openapi/v3` lists `{"paths": {"apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=H"}}}`
  where H is the document's ETag (uppercase hex SHA-512).
- `/openapi/v3/<gv>?hash=H`: the document with `Cache-Control: public, immutable` when H is current,
  a 301 to the current URL when it is stale (kubectl caches by URL, so a stale hash must not get
  new content under the old name).
- Every document carries an `Etag`; `If-None-Match` with it gets a 304. Large ones go out gzipped
  to clients that accept it.
- /openapi/v2 in JSON or, for client-go, which asks for nothing else, as gnostic protobuf
  (`protobuf_v2`). The v3 documents are JSON only (kubectl asks for JSON); other types get 406.

Module layout: `schemas` (type definitions), `params` (query parameters), `paths` (the REST
operations of each resource), `render` (the two dialects), `protobuf_v2` (gnostic encoding of
Swagger), `documents` (build-once cache).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from aiohttp import web

from kubelite.api.openapi import documents
from kubelite.api.openapi.documents import Document, load
from kubelite.objects.errors import MethodNotAllowed, NotAcceptable, NotFound
from kubelite.objects.registry import Registry

__all__ = ["serve_openapi"]

JSON = "application/json"
JSON_TYPES = (JSON, "application/*", "*/*")
PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
PROTOBUF_V2_TYPES = (PROTOBUF_V2, "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
V3_PREFIX = "/openapi/v3/"


async def serve_openapi(request: web.Request, registry: Registry, path: str) -> web.StreamResponse:
    """Answer any request under /openapi (the router sends them all here)."""
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed(f"the server does not allow this method on the requested resource ({request.path})",
                               headers={"Allow": "GET, HEAD"})
    path = path.rstrip("/")
    if path == "/openapi/v2":
        media = _negotiate(request, (*JSON_TYPES, *PROTOBUF_V2_TYPES))
        if media in PROTOBUF_V2_TYPES:
            return _respond(request, await load(registry, documents.SWAGGER_PROTOBUF), content_type=PROTOBUF_V2)
        return _respond(request, await load(registry, documents.SWAGGER))
    if path == "/openapi/v3":
        return _respond(request, await load(registry, documents.INDEX))
    key = path.removeprefix(V3_PREFIX)
    if path.startswith(V3_PREFIX) and key in documents.group_version_keys(registry):
        _negotiate(request, JSON_TYPES)
        return _respond_pinned(request, key, await load(registry, key))
    raise NotFound(f"the server could not find the requested resource ({request.path})")


def _negotiate(request: web.Request, supported: tuple[str, ...]) -> str:
    """The first media type in the client's Accept that we can produce (JSON when none is given)."""
    accept = request.headers.get("Accept", "").strip() or JSON
    for clause in accept.split(","):
        media = clause.split(";", 1)[0].strip().lower()
        if media in supported:
            return media
    raise NotAcceptable(f"only the following media types are accepted: {', '.join(supported)}")


def _respond_pinned(request: web.Request, key: str, doc: Document) -> web.StreamResponse:
    wanted = request.query.get("hash")
    if not wanted:
        return _respond(request, doc)
    if wanted != doc.etag:
        return web.Response(status=301, headers={"Location": f"{V3_PREFIX}{key}?hash={doc.etag}",
                                                 "Vary": "Accept"})
    expires = datetime.now(UTC) + timedelta(days=365)
    return _respond(request, doc, {"Cache-Control": "public, immutable",
                                   "Expires": format_datetime(expires, usegmt=True)})


def _respond(request: web.Request, doc: Document, extra: dict[str, str] | None = None, *,
             content_type: str = JSON) -> web.StreamResponse:
    etag = f'"{doc.etag}"'
    headers = {"Etag": etag, "Vary": "Accept, Accept-Encoding", **(extra or {})}
    if etag in (t.strip() for t in request.headers.get("If-None-Match", "").split(",")):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = content_type
    if doc.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
        return web.Response(body=doc.gzipped, headers={**headers, "Content-Encoding": "gzip"})
    return web.Response(body=doc.body, headers=headers)

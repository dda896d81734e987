"""Manifest, tag and discovery endpoints: `/v2/<name>/manifests/<tag-or-digest>` (GET, HEAD, PUT,
DELETE), `/v2/<name>/tags/list`, `/v2/_catalog`, `/v2/<name>/referrers/<digest>` and `/v2/`.

A pushed manifest is checked (`manifests.check_manifest`), its digest computed over the exact
bytes (and compared with the URL's when pushed by digest), and its blobs and child manifests must
already be in the repository, or the push fails with MANIFEST_BLOB_UNKNOWN and nothing changes.
Manifests are served with the media type they were pushed with; `Accept` is not negotiated (we
never convert documents). Pushes and deletes hold the registry lock so a manifest is never
stored while a blob it needs is being deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from aiohttp import web

from kubelite.images.oci import OCI_INDEX
from kubelite.images.registry.manifests import MANIFEST_MAX, check_manifest
from kubelite.images.registry.rules import (
    Digest,
    RegistryError,
    Route,
    is_digest_reference,
    is_tag,
    paginate,
    parse_digest,
    parse_page,
)

if TYPE_CHECKING:
    from kubelite.images.registry.server import Registry


async def base(registry: Registry, request: web.Request, route: Route) -> web.StreamResponse:
    return web.json_response({})


async def manifest(registry: Registry, request: web.Request, route: Route) -> web.StreamResponse:
    if request.method == "PUT":
        return await _put(registry, request, route)
    if request.method == "DELETE":
        return await _delete(registry, route)
    digest = await _resolve(registry, route)
    stored = await asyncio.to_thread(registry.storage.manifest, route.name, digest)
    if stored is None:
        raise RegistryError("MANIFEST_UNKNOWN", {"name": route.name, "reference": route.arg})
    media_type, data = stored
    return web.Response(body=data, headers={"Content-Type": media_type, "Docker-Content-Digest": str(digest),
                                            "ETag": f'"{digest}"'})


async def _resolve(registry: Registry, route: Route) -> Digest:
    if is_digest_reference(route.arg):
        return parse_digest(route.arg)
    found = await asyncio.to_thread(registry.storage.resolve, route.name, route.arg) if is_tag(route.arg) else None
    if found is None:
        raise RegistryError("MANIFEST_UNKNOWN", {"name": route.name, "tag": route.arg})
    return found


async def _put(registry: Registry, request: web.Request, route: Route) -> web.StreamResponse:
    data = await _read_manifest(request)
    info = check_manifest(data, request.headers.get("Content-Type", ""))
    if is_digest_reference(route.arg):
        digest = parse_digest(route.arg)
        actual = hashlib.new(digest.algorithm, data).hexdigest()
        if actual != digest.hex:
            raise RegistryError("DIGEST_INVALID", {"digest": str(digest), "received": f"{digest.algorithm}:{actual}"},
                                message=f"the manifest's digest is {digest.algorithm}:{actual}, not {digest}")
        tags = request.query.getall("tag", [])
    else:
        digest, tags = Digest("sha256", hashlib.sha256(data).hexdigest()), [route.arg]
    for tag in tags:
        if not is_tag(tag):
            raise RegistryError("MANIFEST_INVALID", {"tag": tag},
                                message=f"invalid tag {tag!r}: up to 128 of [A-Za-z0-9_.-], not starting with . or -")
    async with registry.lock:
        missing = await asyncio.to_thread(registry.storage.missing, route.name, info)
        if missing:
            raise RegistryError("MANIFEST_BLOB_UNKNOWN", {"digest": missing[0]}, also=[{"digest": d} for d in missing[1:]],
                                message="the manifest refers to content this repository does not hold: push it first")
        await asyncio.to_thread(registry.storage.put_manifest, route.name, digest, data, info, tags)
    headers = {"Location": f"/v2/{route.name}/manifests/{digest}", "Docker-Content-Digest": str(digest)}
    if info.subject:
        headers["OCI-Subject"] = info.subject
    response = web.Response(status=201, headers=headers)
    if is_digest_reference(route.arg):
        for tag in tags:
            response.headers.add("OCI-Tag", tag)
    return response


async def _read_manifest(request: web.Request) -> bytes:
    """The body, refused (413) past MANIFEST_MAX before reading it all."""
    if request.content_length is not None and request.content_length > MANIFEST_MAX:
        raise RegistryError("SIZE_INVALID", {"size": request.content_length, "limit": MANIFEST_MAX}, status=413,
                            message=f"manifest is {request.content_length} bytes, the limit is {MANIFEST_MAX}")
    data = bytearray()
    while chunk := await request.content.read(1 << 16):
        data += chunk
        if len(data) > MANIFEST_MAX:
            raise RegistryError("SIZE_INVALID", {"limit": MANIFEST_MAX}, status=413,
                                message=f"manifest is larger than the limit of {MANIFEST_MAX} bytes")
    return bytes(data)


async def _delete(registry: Registry, route: Route) -> web.StreamResponse:
    storage = registry.storage
    async with registry.lock:
        if not await asyncio.to_thread(storage.repository_exists, route.name):
            raise RegistryError("NAME_UNKNOWN", {"name": route.name})
        if is_digest_reference(route.arg):
            done = await asyncio.to_thread(storage.delete_manifest, route.name, parse_digest(route.arg))
        else:
            done = is_tag(route.arg) and await asyncio.to_thread(storage.delete_tag, route.name, route.arg)
    if not done:
        raise RegistryError("MANIFEST_UNKNOWN", {"name": route.name, "reference": route.arg})
    return web.Response(status=202)


async def tags(registry: Registry, request: web.Request, route: Route) -> web.StreamResponse:
    n, last = parse_page(request.query)
    found = await asyncio.to_thread(registry.storage.tags, route.name)
    if found is None:
        raise RegistryError("NAME_UNKNOWN", {"name": route.name})
    page, next_last = paginate(found, n, last)
    return _paged({"name": route.name, "tags": page}, f"/v2/{route.name}/tags/list", n, next_last)


async def catalog(registry: Registry, request: web.Request, route: Route) -> web.StreamResponse:
    n, last = parse_page(request.query)
    page, next_last = paginate(await asyncio.to_thread(registry.storage.catalog), n, last)
    return _paged({"repositories": page}, "/v2/_catalog", n, next_last)


def _paged(body: dict[str, object], path: str, n: int | None, next_last: str | None) -> web.Response:
    response = web.json_response(body)
    if next_last is not None:
        query = urlencode({**({"n": n} if n is not None else {}), "last": next_last})
        response.headers["Link"] = f'<{path}?{query}>; rel="next"'
    return response


async def referrers(registry: Registry, request: web.Request, route: Route) -> web.StreamResponse:
    digest = parse_digest(route.arg)
    found = await asyncio.to_thread(registry.storage.referrers, route.name, digest)
    headers = {}
    wanted = request.query.get("artifactType")
    if wanted is not None:
        found = [entry for entry in found if entry.get("artifactType") == wanted]
        headers["OCI-Filters-Applied"] = "artifactType"
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}
    # bytes, not json_response: the spec wants the bare media type, without a charset parameter
    return web.Response(body=json.dumps(body).encode(), content_type=OCI_INDEX, headers=headers)

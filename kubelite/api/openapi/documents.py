"""Serialized OpenAPI documents, built on first request and kept for the life of the registry.

Nothing is built at import or server start. A document is JSON bytes plus its ETag, which is
upstream's: the uppercase hex SHA-512 of the bytes. The /openapi/v3 index pins each group-version
URL to that hash, so building the index builds every group-version document. Large documents are
also kept gzipped (kube-apiserver compresses responses over 128 KiB for clients that accept it;
kubectl does), at the fastest level: a few ms once instead of ~7x the bytes on every fetch.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from kubelite.api.openapi import protobuf_v2, render
from kubelite.objects.registry import Registry

log = logging.getLogger(__name__)

SWAGGER = "v2"
SWAGGER_PROTOBUF = "v2.pb"
INDEX = "v3"
GZIP_THRESHOLD = 128 * 1024


@dataclass(frozen=True)
class Document:
    body: bytes
    etag: str  # unquoted
    build_seconds: float
    gzipped: bytes | None = None  # the same body gzip-encoded, for documents over GZIP_THRESHOLD


_CACHE: weakref.WeakKeyDictionary[Registry, dict[str, Document]] = weakref.WeakKeyDictionary()


def group_version_keys(registry: Registry) -> dict[str, tuple[str, str]]:
    """`api/v1` -> ("", "v1"), `apis/apps/v1` -> ("apps", "v1"), for every group-version served."""
    return {render.gv_path(g, v): (g, v) for g, v in render.group_versions(registry)}


def document(registry: Registry, key: str) -> Document:
    """`v2` (Swagger JSON), `v2.pb` (Swagger protobuf), `v3` (the index) or a group-version key;
    built once, then cached."""
    cache = _CACHE.setdefault(registry, {})
    found = cache.get(key)
    if found is None:
        found = cache[key] = _build(key, _builder(registry, key))
    return found


async def load(registry: Registry, key: str) -> Document:
    """`document`, off the event loop the first time (a build takes tens of milliseconds)."""
    cached = _CACHE.get(registry, {}).get(key)
    if cached is not None:
        return cached
    return await asyncio.to_thread(document, registry, key)


def _builder(registry: Registry, key: str) -> Callable[[], bytes]:
    if key == SWAGGER:
        return lambda: _json(render.swagger(registry))
    if key == SWAGGER_PROTOBUF:
        return lambda: protobuf_v2.encode(orjson.loads(document(registry, SWAGGER).body))
    if key == INDEX:
        return lambda: _json(render.index_v3({gv: document(registry, gv).etag
                                              for gv in group_version_keys(registry)}))
    group, version = group_version_keys(registry)[key]
    return lambda: _json(render.openapi_v3(registry, group, version))


def _json(doc: object) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def _build(key: str, build: Callable[[], bytes]) -> Document:
    started = time.perf_counter()
    body = build()
    gzipped = gzip.compress(body, compresslevel=1, mtime=0) if len(body) > GZIP_THRESHOLD else None
    elapsed = time.perf_counter() - started
    log.debug("built OpenAPI document %s: %d bytes in %.1f ms", key, len(body), elapsed * 1000)
    return Document(body, hashlib.sha512(body).hexdigest().upper(), elapsed, gzipped)

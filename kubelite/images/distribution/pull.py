"""Pull an image from a registry into the node's store.

    reference --normalise--> name ----HEAD manifest----> digest (same as the store's? done)
        --GET manifest (verified)--> index? pick this platform's manifest (GET, verified)
        --lease on every blob the image needs-->
        --config + layers not in the store, 3 at a time--> one Ingest each (verified while streaming)
        --all there--> ImageStore.adopt(name, documents, ingests) --> unpacked, blobs moved in, named

Nothing enters the store before every blob is verified: each transfer streams into its own
ingest (`pipe.stream_into`, digest and size checked), and `ImageStore.adopt` renames the staged
files into the store and writes the name in one locked step (no second copy or hash). The lease,
taken before the pull looks at what the store has, keeps a concurrent `gc` from deleting a blob
the pull then counts on. Any failure (a digest mismatch, a broken transfer, Ctrl-C) aborts the
ingests and releases the lease, so the store is as it was: no partial blob, no name. A broken
transfer is retried twice with a fresh ingest.

The image is recorded under its normalised name (`docker.io/library/busybox:latest`), or
`repo@sha256:...` when pulled by digest. For the node's own platform an index stays the image's
top-level document (its digest is what `Digest:` prints, as Docker and containerd report it); with
`--platform` for another one, that platform's manifest is stored as the image.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from kubelite.images.api import ImageNotFound, ImageRecord
from kubelite.images.blobs import Ingest
from kubelite.images.distribution.client import Fetched, RegistryClient, pull_scope
from kubelite.images.distribution.errors import (
    DistributionError,
    NotFound,
    TransferBroken,
    error_from_response,
)
from kubelite.images.distribution.pipe import stream_into
from kubelite.images.distribution.progress import NoProgress, Progress, short_id
from kubelite.images.distribution.registries import Endpoint
from kubelite.images.oci import (
    OCI_INDEX,
    Descriptor,
    ImageFormatError,
    document_kind,
    host_platform,
    load_json,
    parse_index,
    parse_manifest,
    pick_platform,
)
from kubelite.images.reference import Reference, parse
from kubelite.images.store import ImageStore

CONCURRENCY = 3
ATTEMPTS = 3  # per blob, for transfers that break off
CHUNK = 1 << 20
T = TypeVar("T")
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}


@dataclass(frozen=True)
class PullResult:
    name: str  # what the store calls it now
    digest: str  # the pulled top-level document (index or manifest)
    record: ImageRecord
    downloaded: int  # bytes transferred for blobs
    up_to_date: bool  # the store already had exactly this


def pull_name(ref: Reference) -> str:
    """The store name a pull records: the tagged name, or repo@digest for a digest."""
    if ref.digest:
        return f"{ref.repository}@{ref.digest}"
    return str(ref.with_default_tag())


def parse_platform(text: str | None) -> dict[str, str]:
    """`linux/amd64`, `linux/arm64/v8`, `arm64` -> an OCI platform; None/"" -> this host's."""
    if not text:
        return host_platform()
    parts = text.strip().lower().split("/")
    if len(parts) == 1:
        parts = ["linux", *parts]
    if len(parts) > 3 or not all(parts):
        raise ValueError(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/amd64")
    out = {"os": parts[0], "architecture": _ARCH_ALIASES.get(parts[1], parts[1])}
    if len(parts) == 3:
        out["variant"] = parts[2]
    return out


async def pull_image(client: RegistryClient, store: ImageStore, reference: str, *,
                     platform: dict[str, str] | None = None, progress: Progress | None = None,
                     concurrency: int = CONCURRENCY) -> PullResult:
    progress = progress or NoProgress()
    ref = parse(reference)
    name = pull_name(ref)
    want = platform or host_platform()
    native = _same_platform(want, host_platform())
    local = await asyncio.to_thread(_local_digest, store, name)
    if ref.digest and local:
        return await _up_to_date(store, name, local)
    tag_or_digest = ref.digest or ref.with_default_tag().tag
    try:
        endpoint, repository, head = await client.head_manifest(ref.domain, ref.path, tag_or_digest)
        if head is not None and local == head.digest and native:
            progress.note(f"{tag_or_digest}: Pulling from {ref.path}")
            return await _up_to_date(store, name, local)
        top = await client.fetch_manifest_at(endpoint, repository, head.digest if head is not None else tag_or_digest)
    except NotFound as e:  # containerd's wording; the registry's code stays on the exception
        missing = NotFound(e.status, "", f"{ref.with_default_tag()}: not found", url=e.url)
        missing.code = e.code
        raise missing from None
    progress.note(f"{tag_or_digest}: Pulling from {ref.path}")
    docs, manifest_doc, image_top = await _platform_manifest(client, top, want, native=native)
    manifest = parse_manifest(manifest_doc)
    if local == image_top.digest:
        return await _up_to_date(store, name, local)
    blobs = list({d.digest: d for d in (manifest.config, *manifest.layers)}.values())
    layer_ids = {d.digest for d in manifest.layers}
    ingests: list[Ingest] = []
    # before anything looks at what the store has: a gc must not delete a blob the pull then skips
    lease = await _to_completion(store.lease, {*docs, *(d.digest for d in blobs)}, undo=lambda x: x.release())
    try:
        staged, downloaded = await _fetch_blobs(client, store, top.endpoint, top.repository, blobs, ingests,
                                                progress=progress, layer_ids=layer_ids, concurrency=concurrency)
        for layer in manifest.layers:
            if layer.digest in staged:
                progress.update(short_id(layer.digest), "Extracting")
        record = await _to_completion(store.adopt, name, image_top, documents=docs, staged=list(staged.values()))
    finally:
        for ingest in ingests:
            ingest.abort()
        lease.release()
    for layer in manifest.layers:
        if layer.digest in staged:
            progress.update(short_id(layer.digest), "Pull complete")
    return PullResult(name, image_top.digest, record, downloaded, False)


def _same_platform(a: dict[str, str], b: dict[str, str]) -> bool:
    keys = ("os", "architecture", "variant")
    return all(a.get(k, "") == b.get(k, "") for k in keys)


def _local_digest(store: ImageStore, name: str) -> str:
    try:
        match = store.find(name)
    except ImageNotFound:
        return ""
    return match.entry.digest if match.kind in ("name", "digest") else ""


async def _up_to_date(store: ImageStore, name: str, digest: str) -> PullResult:
    record = await asyncio.to_thread(store.get, name)
    return PullResult(name, digest, record, 0, True)


async def _platform_manifest(client: RegistryClient, top: Fetched, want: dict[str, str], *,
                             native: bool) -> tuple[dict[str, bytes], dict[str, object], Descriptor]:
    """(documents to store by digest, the platform manifest, the image's top-level descriptor)."""
    doc = load_json(top.data, f"manifest {top.descriptor.digest}")
    if document_kind(doc, top.descriptor.media_type) != "index":
        return {top.descriptor.digest: top.data}, doc, top.descriptor
    entry = pick_platform(parse_index(doc), want)
    child = await client.fetch_manifest_at(top.endpoint, top.repository, entry.digest)
    if child.descriptor.size != entry.size:
        raise ImageFormatError(f"manifest {entry.digest} is {child.descriptor.size} bytes, the index says {entry.size}")
    manifest_doc = load_json(child.data, f"manifest {entry.digest}")
    if document_kind(manifest_doc, entry.media_type or child.descriptor.media_type) != "manifest":
        raise ImageFormatError(f"{entry.digest}: nested indexes are not supported")
    media_type = entry.media_type or child.descriptor.media_type
    plain = Descriptor(media_type, entry.digest, entry.size)
    if native:
        return {top.descriptor.digest: top.data, entry.digest: child.data}, manifest_doc, \
            replace(top.descriptor, media_type=top.descriptor.media_type or OCI_INDEX)
    return {entry.digest: child.data}, manifest_doc, plain


async def _fetch_blobs(client: RegistryClient, store: ImageStore, endpoint: Endpoint, repository: str,
                       blobs: list[Descriptor], ingests: list[Ingest], *, progress: Progress, layer_ids: set[str],
                       concurrency: int) -> tuple[dict[str, Ingest], int]:
    """Every blob not in the store, each into its own ingest (appended to `ingests` for the caller
    to abort); returns {digest: the ingest holding it} and the bytes transferred."""
    limit = asyncio.Semaphore(max(concurrency, 1))
    staged: dict[str, Ingest] = {}
    totals: dict[str, int] = {}
    todo = []
    for desc in blobs:
        item = short_id(desc.digest) if desc.digest in layer_ids else ""
        if store.blobs.exists(desc.digest):
            if item:
                progress.update(item, "Already exists")
        else:
            todo.append((desc, item))
            if item:
                progress.update(item, "Pulling fs layer")

    async def one(desc: Descriptor, item: str) -> None:
        async with limit:
            report: Callable[[int], None] = (lambda n: progress.update(item, "Downloading", current=n,
                                                                        total=desc.size)) if item else (lambda n: None)
            ingest = await _fetch_blob(client, store, endpoint, repository, desc, on_bytes=report, ingests=ingests)
            staged[desc.digest] = ingest
            totals[desc.digest] = desc.size
            if item:
                progress.update(item, "Download complete")

    tasks = [asyncio.ensure_future(one(desc, item)) for desc, item in todo]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return staged, sum(totals.values())


async def _fetch_blob(client: RegistryClient, store: ImageStore, endpoint: Endpoint, repository: str,
                      desc: Descriptor, *, on_bytes: Callable[[int], None], ingests: list[Ingest]) -> Ingest:
    import aiohttp

    url = f"{endpoint.base_url}/v2/{repository}/blobs/{desc.digest}"
    for attempt in range(1, ATTEMPTS + 1):
        ingest = store.blobs.ingest()
        ingests.append(ingest)
        try:
            async with client.request(endpoint, "GET", url, scopes=[pull_scope(repository)],
                                      repository=repository) as resp:
                if resp.status != 200:
                    raise error_from_response(resp.status, resp.reason or "", await resp.read(), url=url,
                                              what=f"blob {desc.digest}")
                await stream_into(ingest, resp.content.iter_chunked(CHUNK), desc, on_bytes=on_bytes)
            if not ingest.has(desc.digest):  # the body ended early: add_stream saw fewer bytes
                raise TransferBroken(f"blob {desc.digest}: the transfer ended early")
            return ingest
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
            ingest.abort()
            if attempt == ATTEMPTS:
                raise TransferBroken(f"blob {desc.digest} from {endpoint.base_url}: the transfer broke off "
                                     f"({type(e).__name__}: {e}); nothing of it was stored") from None
            await asyncio.sleep(0.5 * attempt)
        except BaseException:
            ingest.abort()
            raise
    raise DistributionError(f"blob {desc.digest}: no attempt left")  # pragma: no cover - the loop returns or raises


async def _to_completion(fn: Callable[..., T], *args: Any, undo: Callable[[T], object] | None = None,
                         **kwargs: Any) -> T:
    """`fn` in a thread; a cancellation (Ctrl-C) waits for it to finish before it propagates: the
    thread may be renaming staged files that the caller's clean-up removes. What it returns after
    the caller was cancelled goes to `undo` (a lease nobody would release)."""
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if undo is not None:
            future.add_done_callback(lambda f: f.cancelled() or f.exception() is not None or undo(f.result()))
        with contextlib.suppress(BaseException):  # cancelled again: the callback still undoes
            await asyncio.wait([future])
        raise

"""Push an image from the node's store to a registry.

    name --store--> manifest (or index) + config + layers
        --each blob, 3 at a time--> HEAD (there already? skip)
                                  --> POST ?mount=&from=<repo> when another repository of the same
                                      registry is known to hold it (a name in the store says so)
                                  --> POST, then PUT ?digest= with the blob (in memory up to 4 MiB,
                                      streamed from the file above that)
        --all there--> PUT the manifest(s) with their media type; the registry's digest must be ours

An index is pushed whole only when every platform's manifest and blobs are in the store; a store
that holds one platform of an index (what a pull keeps) pushes that platform's manifest, as
Docker does. The result carries what Docker prints: `<tag>: digest: sha256:... size: N`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelite.images.api import ImageNotFound
from kubelite.images.distribution.client import RegistryClient
from kubelite.images.distribution.errors import DistributionError, error_from_response
from kubelite.images.distribution.progress import NoProgress, Progress, short_id
from kubelite.images.distribution.registries import Endpoint
from kubelite.images.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    document_kind,
    load_json,
    parse_index,
    parse_manifest,
)
from kubelite.images.reference import Reference, parse
from kubelite.images.store import ImageStore

CONCURRENCY = 3
MONOLITHIC_LIMIT = 4 << 20  # blobs up to this size are sent from memory in one PUT
CHUNK = 1 << 20


@dataclass(frozen=True)
class PushResult:
    name: str  # docker.io/library/busybox:latest
    tag: str
    digest: str  # of the manifest or index pushed under the tag
    size: int
    media_type: str
    uploaded: int  # blob bytes sent (blobs the registry had, or mounted, cost nothing)


@dataclass(frozen=True)
class _Plan:
    top: Descriptor
    documents: list[tuple[Descriptor, bytes]]  # children first, the top last
    blobs: list[Descriptor]
    layers: set[str]


async def push_image(client: RegistryClient, store: ImageStore, reference: str, *,
                     progress: Progress | None = None, concurrency: int = CONCURRENCY) -> PushResult:
    progress = progress or NoProgress()
    ref = parse(reference)
    if ref.digest:
        raise DistributionError(f"cannot push a digest reference ({reference}): push a tag")
    ref = ref.with_default_tag()
    plan = await asyncio.to_thread(_plan, store, ref)
    endpoint = client.hosts.push_endpoint(ref.domain)
    repository = ref.path
    sources = await asyncio.to_thread(mount_sources, store, ref)
    scopes = [f"repository:{repository}:pull,push"] + sorted({f"repository:{s}:pull" for v in sources.values() for s in v})
    progress.note(f"The push refers to repository [{ref.repository}]")
    for desc in plan.blobs:
        if desc.digest in plan.layers:
            progress.update(short_id(desc.digest), "Preparing")
    limit = asyncio.Semaphore(max(concurrency, 1))

    async def one(desc: Descriptor) -> int:
        async with limit:
            item = short_id(desc.digest) if desc.digest in plan.layers else ""
            return await _push_blob(client, endpoint, repository, scopes, desc, store.blobs.path(desc.digest),
                                    sources.get(desc.digest, []), progress=progress, item=item)

    tasks = [asyncio.ensure_future(one(d)) for d in plan.blobs]
    try:
        uploaded = sum(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for desc, data in plan.documents:
        target = ref.tag if desc.digest == plan.top.digest else desc.digest
        await _put_manifest(client, endpoint, repository, scopes, target, desc, data)
    return PushResult(str(ref), ref.tag, plan.top.digest, plan.top.size, plan.top.media_type, uploaded)


def _plan(store: ImageStore, ref: Reference) -> _Plan:
    try:
        match = store.find(str(ref))
    except ImageNotFound:
        raise ImageNotFound(f"An image does not exist locally with the tag: {ref.repository} "
                            f"(tag it first: kubelite image tag SOURCE {ref})") from None
    content = store.content(match.entry.target)
    top_doc = store.blobs.read(content.top.digest)
    manifests = [content.manifest]
    top = content.top
    if content.top.digest != content.manifest.digest:
        children = parse_index(load_json(top_doc, f"index {top.digest}"))
        if all(_complete(store, child) for child in children):
            manifests = children
        else:
            top, top_doc = content.manifest, store.blobs.read(content.manifest.digest)
    documents = [(_typed(m, store.blobs.read(m.digest)), store.blobs.read(m.digest))
                 for m in manifests if m.digest != top.digest]
    documents.append((_typed(top, top_doc), top_doc))
    blobs: dict[str, Descriptor] = {}
    layers: set[str] = set()
    for m in manifests:
        manifest = parse_manifest(load_json(store.blobs.read(m.digest), f"manifest {m.digest}"))
        for desc in (manifest.config, *manifest.layers):
            blobs.setdefault(desc.digest, desc)
        layers |= {d.digest for d in manifest.layers}
    return _Plan(documents[-1][0], documents, list(blobs.values()), layers)


def _complete(store: ImageStore, child: Descriptor) -> bool:
    if not store.blobs.exists(child.digest):
        return False
    manifest = parse_manifest(load_json(store.blobs.read(child.digest), f"manifest {child.digest}"))
    return all(store.blobs.exists(d.digest) for d in (manifest.config, *manifest.layers))


def _typed(desc: Descriptor, data: bytes) -> Descriptor:
    """The descriptor with the media type the registry must be told (from the document if need be)."""
    doc = load_json(data, f"document {desc.digest}")
    media_type = desc.media_type or str(doc.get("mediaType") or "")
    if not media_type:
        media_type = OCI_INDEX if document_kind(doc) == "index" else OCI_MANIFEST
    return Descriptor(media_type, desc.digest, len(data))


def mount_sources(store: ImageStore, ref: Reference) -> dict[str, list[str]]:
    """{blob digest: other repositories of the same registry whose images (named so in the store)
    contain it} — where a cross-repository mount can find the blob."""
    sources: dict[str, list[str]] = {}
    for entry, content in store.images():
        if not entry.name:
            continue
        other = parse(entry.name)
        if other.domain != ref.domain or other.path == ref.path:
            continue
        for digest in content.blobs():
            repos = sources.setdefault(digest, [])
            if other.path not in repos:
                repos.append(other.path)
    return sources


async def _push_blob(client: RegistryClient, endpoint: Endpoint, repository: str, scopes: list[str], desc: Descriptor,
                     path: Path, sources: list[str], *, progress: Progress, item: str) -> int:
    def report(status: str, **kw: Any) -> None:
        if item:
            progress.update(item, status, **kw)

    base = f"{endpoint.base_url}/v2/{repository}/blobs"
    async with client.request(endpoint, "HEAD", f"{base}/{desc.digest}", scopes=scopes, repository=repository) as resp:
        if resp.status == 200:
            report("Layer already exists")
            return 0
        if resp.status != 404:
            raise error_from_response(resp.status, resp.reason or "", b"", url=str(resp.url), what=f"blob {desc.digest}")
    location = ""
    for source in sources[:1]:
        url = f"{base}/uploads/?mount={desc.digest}&from={source}"
        async with client.request(endpoint, "POST", url, scopes=scopes, repository=repository) as resp:
            if resp.status == 201:
                report(f"Mounted from {source}")
                return 0
            if resp.status != 202:
                raise error_from_response(resp.status, resp.reason or "", await resp.read(), url=url,
                                          what=f"mount of {desc.digest}")
            location = resp.headers.get("Location", "")
    if not location:
        location = await _start_upload(client, endpoint, repository, scopes, f"{base}/uploads/")
    report("Pushing", current=0, total=desc.size)
    await _put_blob(client, endpoint, repository, scopes, _upload_url(endpoint, location, desc.digest), desc, path,
                    on_bytes=lambda n: report("Pushing", current=n, total=desc.size))
    report("Pushed")
    return desc.size


async def _start_upload(client: RegistryClient, endpoint: Endpoint, repository: str, scopes: list[str], url: str) -> str:
    async with client.request(endpoint, "POST", url, scopes=scopes, repository=repository,
                              headers={"Content-Length": "0"}) as resp:
        if resp.status != 202 or not resp.headers.get("Location"):
            raise error_from_response(resp.status, resp.reason or "", await resp.read(), url=url, what="blob upload")
        return resp.headers["Location"]


def _upload_url(endpoint: Endpoint, location: str, digest: str) -> str:
    from yarl import URL

    url = URL(location)
    if not url.is_absolute():
        url = URL(endpoint.base_url).join(url)
    return str(url.extend_query({"digest": digest}))


async def _put_blob(client: RegistryClient, endpoint: Endpoint, repository: str, scopes: list[str], url: str,
                    desc: Descriptor, path: Path, *, on_bytes: Callable[[int], None]) -> None:
    body: Callable[[], Any]
    if desc.size <= MONOLITHIC_LIMIT:
        data = await asyncio.to_thread(path.read_bytes)
        body = lambda: data  # noqa: E731
    else:
        body = lambda: _file_chunks(path, on_bytes)  # noqa: E731
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(desc.size)}
    async with client.request(endpoint, "PUT", url, scopes=scopes, repository=repository, headers=headers,
                              body=body) as resp:
        if resp.status not in (201, 204):
            raise error_from_response(resp.status, resp.reason or "", await resp.read(), url=url,
                                      what=f"upload of {desc.digest}")


async def _file_chunks(path: Path, on_bytes: Callable[[int], None]) -> AsyncIterator[bytes]:
    sent = 0
    with open(path, "rb") as f:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            sent += len(chunk)
            on_bytes(sent)
            yield chunk


async def _put_manifest(client: RegistryClient, endpoint: Endpoint, repository: str, scopes: list[str], target: str,
                        desc: Descriptor, data: bytes) -> None:
    url = f"{endpoint.base_url}/v2/{repository}/manifests/{target}"
    async with client.request(endpoint, "PUT", url, scopes=scopes, repository=repository,
                              headers={"Content-Type": desc.media_type}, body=data) as resp:
        if resp.status not in (200, 201):
            raise error_from_response(resp.status, resp.reason or "", await resp.read(), url=url,
                                      what=f"manifest {repository}:{target}")
        answered = resp.headers.get("Docker-Content-Digest", "")
    if answered and answered != desc.digest:
        raise DistributionError(f"the registry stored manifest {repository}:{target} as {answered}, "
                                f"not as {desc.digest} (it rewrote the document)")

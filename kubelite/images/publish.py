"""Publishing images into the store: unpack every layer, then move the blobs in and write the
names in one step under the store lock.

    imports (archive.py)  --one Ingest-->                      \\
    pulls (distribution)  --one Ingest per transfer--> adopt --> publish: lease -> unpack ->
                                                                 [lock: commit blobs, check, name]

Invariants:
- a name is written only when every blob its image needs is in `blobs/` (checked under the lock,
  after the commit), so no name ever dangles;
- the blobs a publish adds are renamed in under the same lock and removed again if the name cannot
  be written, so a failed or interrupted publish leaves no blob behind it either (staged files go
  with their ingest; snapshots it unpacked are complete, and unnamed ones are the collector's);
- from before the unpack until the name exists a lease holds the image's blobs and diff IDs, so a
  concurrent `gc` cannot delete a blob the import found in the store or a snapshot it just made.
`adopt` is the pull's entry point: its blobs were verified (digest and size) while they streamed
into their ingests, so they are renamed, not copied and hashed again; only the small documents
(manifests, indexes) are staged here, and every descriptor's size is checked against the file.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from kubelite.images.api import ImageRecord
from kubelite.images.archive import Named
from kubelite.images.blobs import BlobStore, Ingest, Staging
from kubelite.images.content import ImageContent, resolve
from kubelite.images.index import with_name, with_untagged
from kubelite.images.oci import Descriptor, ImageFormatError
from kubelite.images.reference import parse

if TYPE_CHECKING:
    from kubelite.images.store import ImageStore


def adopt(store: ImageStore, name: str, top: Descriptor, *, documents: Mapping[str, bytes],
          staged: Sequence[Ingest]) -> ImageRecord:
    """Name `top` after adopting blobs already staged and verified in `staged`: `documents`
    (manifests, indexes) are staged and verified here, the layers unpacked, then the staged files
    renamed into the store and the name written in one locked step. Blobs the store has need not
    be staged (a pull holds a lease on them from before it looked: `ImageStore.lease`); anything
    else missing is an error and stores nothing. The ingests stay the caller's to abort (empty
    after a successful adopt)."""
    name = str(parse(name).with_default_tag())
    with store.blobs.ingest() as docs:
        for digest, data in documents.items():
            docs.add_bytes(data, digest=digest)
        staging = Staging(store.blobs, [docs, *staged])
        try:
            content = resolve(Descriptor(top.media_type, top.digest, top.size),
                              lambda d: staging.path(d.digest).read_bytes())
        except FileNotFoundError as e:
            raise ImageFormatError(f"a document of image {top.digest} is neither staged nor in the store "
                                   f"({e.filename})") from None
        with store.leases.take(_needs(content)):  # before the check: what it finds stays
            check_staged(content, staging)
            [record] = _publish(store, [(content, [name])], staging)
    return record


def publish(store: ImageStore, images: builtins.list[Named], staging: Staging) -> builtins.list[ImageRecord]:
    """Unpack, then commit the staged blobs and write the names under the store lock."""
    with store.leases.take({key for content, _ in images for key in _needs(content)}):
        return _publish(store, images, staging)


def _needs(content: ImageContent) -> set[str]:
    return {*content.blobs(), *content.diff_ids}


def _publish(store: ImageStore, images: builtins.list[Named], staging: Staging) -> builtins.list[ImageRecord]:
    """`publish` with the lease held (from here until the names exist, gc keeps all of it)."""
    unpack(store, images, staging)
    with store.index.locked():
        added = staging.commit()
        try:
            check_complete(images, store.blobs)
            entries = store.index.entries()
            for content, names in images:
                for name in names:
                    entries = with_name(entries, name, content.top)
                if not names:
                    entries = with_untagged(entries, content.top)
            store.index.write(entries)
        except BaseException:
            staging.rollback(added)  # no name was written: the blobs it would have used go too
            raise
    return [store.record(name, content) for content, names in images for name in names or [""]]


def unpack(store: ImageStore, images: builtins.list[Named], staging: Staging) -> None:
    """Every layer's snapshot (from the staged blob, or the stored one); on failure the snapshots
    made here are removed again."""
    started = time.perf_counter()
    created = []
    try:
        for content, _ in images:
            for layer, diff_id in zip(content.layers, content.diff_ids, strict=True):
                blob = staging.path(layer.digest)
                if not store.snapshots.exists(diff_id) and not blob.exists():
                    raise _removed(content, [layer.digest])
                result = store.snapshots.ensure(diff_id, blob)
                if result.created:
                    created.append(diff_id)
    except BaseException:
        for diff_id in created:
            store.snapshots.remove(diff_id)
        raise
    store.last_unpack_seconds = time.perf_counter() - started


def check_staged(content: ImageContent, staging: Staging) -> None:
    """Every blob the image needs is staged or stored, with the size its descriptor gives (the
    ingests verified each digest; this ties the staged files to this image's descriptors)."""
    sizes = {d.digest: d.size for d in (content.top, content.manifest, *content.layers)}
    sizes[content.config_digest] = content.config_size
    for digest, size in sorted(sizes.items()):
        if not staging.has(digest):
            raise ImageFormatError(f"blob {digest} of image {content.top.digest} is neither staged nor in the store")
        actual = staging.path(digest).stat().st_size
        if actual != size:
            raise ImageFormatError(f"blob {digest} is {actual} bytes, its descriptor says {size}")


def check_complete(images: builtins.list[Named], blobs: BlobStore) -> None:
    """Under the store lock, after the commit: a name is written only over blobs that are all there
    (a blob an import found in the store may have been collected since, had nothing leased it)."""
    for content, _ in images:
        missing = sorted(d for d in content.blobs() if not blobs.exists(d))
        if missing:
            raise _removed(content, missing)


def _removed(content: ImageContent, missing: builtins.list[str]) -> ImageFormatError:
    return ImageFormatError(f"blobs {', '.join(missing)} of image {content.top.digest} were removed from the "
                            "store while it was being imported (an image removal ran at the same time); "
                            "import or pull it again")

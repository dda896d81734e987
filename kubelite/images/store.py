"""The node's image store: `ImageStore(root)` implements `ImageStoreAPI` over a directory.

    <root>/oci-layout, index.json   the store is an OCI image layout; index.json holds the names
    <root>/blobs/sha256/<hex>       manifests, indexes, configs and layers, content-addressed
    <root>/snapshots/<hex>/         one unpacked directory per layer diff ID (overlay lower dirs)
    <root>/ingest/, locks/, lock    staging for imports; per-layer unpack locks; the index lock
    <root>/leases/                  what operations in progress need kept (leases.py)

Imports stage and verify every blob, unpack (and so verify) every layer, and only then publish
blobs and names together under the store lock (publish.py): a failed import stores nothing. A
pull stages and verifies its blobs itself (one ingest per transfer) and hands them to `adopt`,
which publishes them the same way by renaming the staged files (no second copy or hash). `get`
is what the kubelet calls before creating a container (blocking; run it in a thread): it resolves
the name, re-unpacks any snapshot that is missing, and returns the layer directories lowest
first. Removing names never deletes content; `gc` (run by `remove`) deletes the blobs and
snapshots no name and no lease (leases.py: an import or pull in progress) reaches, except
snapshots some mount still uses.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import logging
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from kubelite.images import archive, publish
from kubelite.images.api import ImageNotFound, ImageRecord, InvalidImageName
from kubelite.images.archive import Named
from kubelite.images.blobs import BlobStore, Ingest, Staging
from kubelite.images.content import ImageContent, resolve
from kubelite.images.index import Entry, Index, with_name
from kubelite.images.leases import Lease, Leases
from kubelite.images.oci import Descriptor, ImageFormatError
from kubelite.images.reference import is_image_id, parse
from kubelite.images.snapshots import Snapshots

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Match:
    entry: Entry
    name: str  # the normalised name asked for ("" when found by the ID of an untagged image)
    kind: Literal["name", "digest", "id"]


@dataclass
class GcResult:
    blobs: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    kept_mounted: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def default_root(data_dir: Path) -> Path:
    return data_dir / "images"


class ImageStore:
    def __init__(self, root: Path, *, privileged: bool | None = None) -> None:
        root = self.root = root.absolute()  # layer_dirs end up in mount options: never relative
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.blobs = BlobStore(root)
        self.snapshots = Snapshots(root, privileged=privileged)
        self.index = Index(root)
        self.index.init_layout()
        self.leases = Leases(root, self.index.locked)
        self._content: dict[str, ImageContent] = {}
        self.last_unpack_seconds = 0.0  # layers unpacked by the last import or get (a figure for tests)

    # -- the kubelet's side (ImageStoreAPI) --------------------------------------------------------

    def get(self, reference: str) -> ImageRecord:
        match = self.find(reference)
        started = time.perf_counter()
        try:
            content = self.content(match.entry.target)
            missing = [(x, d) for x, d in zip(content.layers, content.diff_ids, strict=True)
                       if not self.snapshots.exists(d)]
            for layer, diff_id in missing:
                self.snapshots.ensure(diff_id, self.blobs.path(layer.digest))
        except FileNotFoundError:  # removed (and collected) between the lookup and now
            raise ImageNotFound(f"image {reference!r} was removed from the node's image store") from None
        if missing:
            self.last_unpack_seconds = time.perf_counter() - started
        return self.record(match.name, content)

    def list(self) -> builtins.list[ImageRecord]:
        """One record per name (untagged images have no name to pull by); nothing is unpacked."""
        records = []
        for e in self.index.entries():
            if e.name:
                try:
                    records.append(self.record(e.name, self.content(e.target)))
                except (FileNotFoundError, ImageFormatError) as err:  # a damaged entry must not hide the rest
                    log.warning("image %s is unreadable: %s", e.name, err)
        return records

    # -- lookups -----------------------------------------------------------------------------------

    def find(self, reference: str) -> Match:
        """The entry for a name, `name@digest`, image ID or unique ID prefix (tried in Docker's order)."""
        entries = self.index.entries()
        if is_image_id(reference):
            return self._by_id(entries, reference)
        try:
            ref = parse(reference)
        except InvalidImageName:
            if _maybe_id_prefix(reference):
                return self._by_id(entries, reference)
            raise
        if ref.digest:
            for e in entries:
                if e.name and _repository(e.name) == ref.repository and ref.digest in (
                        e.digest, self.content(e.target).manifest.digest):
                    return Match(e, str(ref), "digest")
            raise ImageNotFound(f"image {str(ref)!r} is not in the node's image store")
        name = str(ref.with_default_tag())
        for e in entries:
            if e.name == name:
                return Match(e, name, "name")
        if _maybe_id_prefix(reference):
            with contextlib.suppress(ImageNotFound):
                return self._by_id(entries, reference)
        raise ImageNotFound(f"image {name!r} is not in the node's image store")

    def _by_id(self, entries: builtins.list[Entry], text: str) -> Match:
        want = "sha256:" + text.removeprefix("sha256:")
        found = [e for e in entries if self.content(e.target).config_digest.startswith(want)]
        ids = {self.content(e.target).config_digest for e in found}
        if not ids:
            raise ImageNotFound(f"no image with ID {text!r} in the node's image store")
        if len(ids) > 1:
            raise ImageNotFound(f"image ID prefix {text!r} is ambiguous")
        entry = min(found, key=lambda e: (not e.name, e.name))
        return Match(entry, entry.name, "id")

    def content(self, top: Descriptor) -> ImageContent:
        """The resolved documents of a stored image (immutable, so cached by digest)."""
        cached = self._content.get(top.digest)
        if cached is None:
            cached = resolve(top, lambda d: self.blobs.read(d.digest))
            self._content[top.digest] = cached
        return cached

    def names_of(self, digest: str) -> builtins.list[str]:
        return sorted(e.name for e in self.index.entries() if e.digest == digest and e.name)

    def record(self, name: str, content: ImageContent) -> ImageRecord:
        return ImageRecord(
            reference=name, id=content.config_digest, digest=content.top.digest,
            config=copy.deepcopy(content.config),
            layer_dirs=tuple(self.snapshots.path(d) for d in content.diff_ids), size=content.size)

    # -- imports -----------------------------------------------------------------------------------

    def import_oci_layout(self, path: Path, ref: str | None = None, *, ref_name: str | None = None) -> builtins.list[ImageRecord]:
        """Import the images of an OCI layout (a directory or a tar of one); see archive.layout_names."""
        with archive.open_files(path) as files, self.blobs.ingest() as ingest:
            images = archive.read_oci_layout(files, ingest, ref=ref, ref_name=ref_name)
            return publish.publish(self, images, Staging(self.blobs, [ingest]))

    def load_docker_archive(self, path: Path) -> builtins.list[ImageRecord]:
        """`docker load`: a `docker save` tarball (or an OCI archive, as docker accepts)."""
        with archive.open_files(path) as files, self.blobs.ingest() as ingest:
            if archive.is_oci_layout(files) and not files.exists("manifest.json"):
                images = archive.read_oci_layout(files, ingest)
            else:
                images = archive.read_docker_archive(files, ingest)
            return publish.publish(self, images, Staging(self.blobs, [ingest]))

    def lease(self, digests: Iterable[str] = ()) -> Lease:
        """Keep these blobs (and snapshots, by diff ID) from `gc` until the lease is released. Take
        it before looking at what the store has, and never with the store lock held."""
        return self.leases.take(digests)

    def adopt(self, name: str, top: Descriptor, *, documents: Mapping[str, bytes],
              staged: Sequence[Ingest]) -> ImageRecord:
        """Name `top` over blobs already staged and verified in `staged` (ingests of this store, one
        per transfer of a pull), renaming them into the store; see publish.adopt."""
        return publish.adopt(self, name, top, documents=documents, staged=staged)

    # -- exports and views -------------------------------------------------------------------------

    def save(self, references: builtins.list[str], out: BinaryIO) -> None:
        """`docker save` of these images into `out` (a file or pipe opened for writing)."""
        grouped: dict[str, Named] = {}
        for reference in references:
            match = self.find(reference)
            content = self.content(match.entry.target)
            names = grouped.setdefault(content.top.digest, (content, []))[1]
            if match.kind == "name" and match.name not in names:
                names.append(match.name)
        self.blobs.ingest_dir.mkdir(parents=True, exist_ok=True)
        archive.write_docker_archive(list(grouped.values()), self.blobs.path, out, scratch=self.blobs.ingest_dir)

    def images(self) -> builtins.list[tuple[Entry, ImageContent]]:
        """Every index entry (untagged ones included) with its resolved content."""
        return [(e, self.content(e.target)) for e in self.index.entries()]

    def inspect(self, reference: str) -> dict[str, Any]:
        """A `docker image inspect`-like view, plus where each layer is unpacked."""
        content = self.content(self.find(reference).entry.target)
        names = self.names_of(content.top.digest)
        config = content.config
        layers = [{"digest": layer.digest, "mediaType": layer.media_type, "size": layer.size, "diffID": diff_id,
                   "snapshot": str(self.snapshots.path(diff_id)), "unpacked": self.snapshots.exists(diff_id)}
                  for layer, diff_id in zip(content.layers, content.diff_ids, strict=True)]
        return {
            "Id": content.config_digest, "RepoTags": names,
            "RepoDigests": sorted({f"{_repository(n)}@{content.top.digest}" for n in names}),
            "Created": config.get("created", ""), "Architecture": config.get("architecture", ""),
            "Os": config.get("os", ""), "Config": config.get("config") or {},
            "RootFS": {"Type": "layers", "Layers": list(content.diff_ids)}, "Size": content.size,
            "Manifest": {"digest": content.manifest.digest, "mediaType": content.manifest.media_type,
                         "index": content.top.digest if content.top != content.manifest else ""},
            "Layers": layers, "History": config.get("history") or [],
        }

    # -- names -------------------------------------------------------------------------------------

    def tag(self, source: str, target: str) -> ImageRecord:
        entry = self.find(source).entry
        ref = parse(target)
        if ref.digest:
            raise InvalidImageName(f"refusing to create a tag with a digest reference: {target}")
        name = str(ref.with_default_tag())
        with self.index.locked():
            self.index.write(with_name(self.index.entries(), name, entry.target))
        return self.record(name, self.content(entry.target))

    def remove(self, reference: str, *, prune: bool = True) -> tuple[builtins.list[str], GcResult]:
        """Drop a name; for `repo@digest` every name of that repository on that image; for an image
        ID the whole image. Returns the names removed and what the garbage collection freed."""
        match = self.find(reference)
        digest = match.entry.digest
        with self.index.locked():
            entries = self.index.entries()
            if match.kind == "id":
                gone = [e for e in entries if e.digest == digest]
            elif match.kind == "digest":
                repo = _repository(match.name)
                gone = [e for e in entries if e.digest == digest and e.name and _repository(e.name) == repo]
            else:
                gone = [e for e in entries if e.name == match.name]
            self.index.write([e for e in entries if e not in gone])
        removed = sorted(e.name for e in gone if e.name)
        return removed, (self.gc() if prune else GcResult())

    def prune(self) -> tuple[builtins.list[str], GcResult]:
        """Drop untagged images, then collect garbage."""
        with self.index.locked():
            entries = self.index.entries()
            dropped = [e.digest for e in entries if not e.name]
            self.index.write([e for e in entries if e.name])
        return dropped, self.gc()

    # -- garbage collection ------------------------------------------------------------------------

    def gc(self) -> GcResult:
        result = GcResult()
        with self.index.locked():
            leased = self.leases.held()  # an import or pull in progress needs these
            used_blobs: set[str] = set(leased)
            used_layers: set[str] = set(leased)
            for e in self.index.entries():
                content = self.content(e.target)
                used_blobs |= content.blobs()
                used_layers |= set(content.diff_ids)
            for digest in sorted(self.blobs.digests() - used_blobs):
                with contextlib.suppress(FileNotFoundError):
                    result.bytes_freed += self.blobs.path(digest).stat().st_size
                self.blobs.delete(digest)
                self._content.pop(digest, None)
                result.blobs.append(digest)
            mounted = mounted_text()
            for diff_id in sorted(self.snapshots.diff_ids() - used_layers):
                if diff_id.removeprefix("sha256:") in mounted:
                    result.kept_mounted.append(diff_id)
                elif self.snapshots.remove(diff_id, blocking=False):
                    result.snapshots.append(diff_id)
            self.snapshots.cleanup_temporaries()
            _remove_stale_ingests(self.blobs.ingest_dir)
        return result


def mounted_text() -> str:
    """The mount table (a snapshot whose hex appears in it is some container's lower layer)."""
    try:
        return Path("/proc/self/mountinfo").read_text()
    except OSError:
        return ""


def _maybe_id_prefix(text: str) -> bool:
    hex_part = text.removeprefix("sha256:")
    return 4 <= len(hex_part) <= 64 and all(c in "0123456789abcdef" for c in hex_part)


def _repository(name: str) -> str:
    return parse(name).repository


def _remove_stale_ingests(ingest_dir: Path, *, min_age: float = 3600.0) -> None:
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(ingest_dir):
            path = ingest_dir / name
            with contextlib.suppress(FileNotFoundError):
                if time.time() - path.stat().st_mtime > min_age:
                    shutil.rmtree(path, ignore_errors=True)


__all__ = ["GcResult", "ImageFormatError", "ImageNotFound", "ImageStore", "InvalidImageName", "default_root"]

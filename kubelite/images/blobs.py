"""Content-addressed blobs: `blobs/sha256/<hex>`, written only after their digest is verified.

Writes go through an `Ingest`: each blob is copied into a private staging directory while it is
hashed, checked against the digest (and size) it was announced with, and only `commit()` renames
the staged files into `blobs/`. An import that fails anywhere aborts its ingest and leaves the
store as it was. A blob's path is its digest, so committing a blob that exists is a no-op and two
writers of the same content cannot conflict. Blobs are never modified; `delete` is for the
garbage collector, which runs under the store lock.

`Staging` is several ingests seen as one: a pull stages each concurrent transfer in an ingest of
its own, and the store adopts them all in one step (renames in the same file system: no second
copy or hash). Committing is all or nothing: a failure part-way, or `rollback` afterwards (the
store's naming step failed), removes the blobs this commit added, so no blob appears without
the name it was adopted for.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from kubelite.lib.files import fsync_dir

CHUNK = 1 << 20
_SHA256 = re.compile(r"sha256:([a-f0-9]{64})")


class DigestMismatch(Exception):
    """Content whose digest or size is not the one announced; nothing of it is stored."""


def hex_of(digest: str) -> str:
    match = _SHA256.fullmatch(digest)
    if match is None:
        raise DigestMismatch(f"unsupported or malformed digest {digest!r} (only sha256 is supported)")
    return match.group(1)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"

    def path(self, digest: str) -> Path:
        return self.dir / hex_of(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def digests(self) -> set[str]:
        try:
            return {f"sha256:{name}" for name in os.listdir(self.dir) if _SHA256.fullmatch(f"sha256:{name}")}
        except FileNotFoundError:
            return set()

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def ingest(self) -> Ingest:
        self.ingest_dir.mkdir(parents=True, exist_ok=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        return Ingest(self, Path(tempfile.mkdtemp(dir=self.ingest_dir)))


class Ingest:
    """Blobs staged for one import; `commit` publishes them, `abort` (or an exception) drops them."""

    def __init__(self, blobs: BlobStore, staging: Path) -> None:
        self.blobs = blobs
        self.staging = staging
        self.staged: dict[str, Path] = {}

    def __enter__(self) -> Ingest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()

    def path(self, digest: str) -> Path:
        """Where the blob can be read now: staged here, or already in the store."""
        return self.staged.get(digest) or self.blobs.path(digest)

    def has(self, digest: str) -> bool:
        return digest in self.staged or self.blobs.exists(digest)

    def add_bytes(self, data: bytes, *, digest: str | None = None) -> str:
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        _check(actual, len(data), digest, None)
        if not self.has(actual):
            target = self.staging / hex_of(actual)
            with open(target, "wb") as out:
                out.write(data)
                os.fsync(out.fileno())
            self.staged[actual] = target
        return actual

    def add_stream(self, src: BinaryIO, *, digest: str | None = None, size: int | None = None) -> tuple[str, int]:
        """Copy `src` in, verifying it when `digest`/`size` are given; returns (digest, size)."""
        if digest is not None and self.has(digest):
            return digest, self.path(digest).stat().st_size
        tmp = self.staging / f"partial-{len(self.staged)}"
        hasher, total = hashlib.sha256(), 0
        with open(tmp, "wb") as out:
            while chunk := src.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
                total += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = "sha256:" + hasher.hexdigest()
        try:
            _check(actual, total, digest, size)
        except DigestMismatch:
            tmp.unlink()
            raise
        if self.has(actual):
            tmp.unlink()
        else:
            target = self.staging / hex_of(actual)
            tmp.rename(target)
            self.staged[actual] = target
        return actual, total

    def commit(self) -> list[str]:
        """Publish the staged blobs (with the store lock held); returns the digests that were new."""
        return Staging(self.blobs, [self]).commit()

    def abort(self) -> None:
        self.staged.clear()
        shutil.rmtree(self.staging, ignore_errors=True)


class Staging:
    """Blobs staged in several ingests of one store, read and committed as one."""

    def __init__(self, blobs: BlobStore, ingests: Iterable[Ingest]) -> None:
        self.blobs = blobs
        self.ingests = list(ingests)
        for ingest in self.ingests:
            if ingest.blobs.root != blobs.root:  # a rename must stay in the store's file system
                raise ValueError(f"ingest {ingest.staging} belongs to another store than {blobs.root}")

    def path(self, digest: str) -> Path:
        """Where the blob can be read now: staged in one of the ingests, or already in the store."""
        for ingest in self.ingests:
            if digest in ingest.staged:
                return ingest.staged[digest]
        return self.blobs.path(digest)

    def has(self, digest: str) -> bool:
        return any(digest in ingest.staged for ingest in self.ingests) or self.blobs.exists(digest)

    def commit(self) -> list[str]:
        """Rename every staged blob into `blobs/` (call with the store lock held, so no collector
        runs in between); returns the digests that were not in the store before. All or nothing."""
        added: list[str] = []
        try:
            for ingest in self.ingests:
                for digest, staged in list(ingest.staged.items()):
                    target = self.blobs.path(digest)
                    if not target.exists():  # same digest, same bytes: an existing blob stays as it is
                        os.rename(staged, target)
                        added.append(digest)
                    del ingest.staged[digest]
            if added:
                fsync_dir(self.blobs.dir)  # the renames are durable before a name can point at them
        except BaseException:
            self.rollback(added)
            raise
        return added

    def rollback(self, added: Iterable[str]) -> None:
        """Remove blobs a commit added (the store lock still held: nothing can have named them)."""
        for digest in added:
            self.blobs.delete(digest)


def _check(actual: str, size: int, want: str | None, want_size: int | None) -> None:
    if want is not None:
        hex_of(want)
        if actual != want:
            raise DigestMismatch(f"content digest {actual} does not match the expected {want}")
    if want_size is not None and size != want_size:
        raise DigestMismatch(f"content of {actual} is {size} bytes, the descriptor says {want_size}")

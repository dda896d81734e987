"""The registry's files: content-addressed blobs, per-repository links, tags and upload sessions.

    <root>/blobs/<alg>/<hex>                          content (layers, configs, manifests)
    <root>/uploads/<uuid>/data, .../repository        upload sessions in progress
    <root>/repositories/<name>/_blobs/<alg>/<hex>     empty link: the repository was given this blob
    <root>/repositories/<name>/_manifests/<alg>/<hex> link to a manifest; holds its media type
    <root>/repositories/<name>/_tags/<tag>            the digest the tag points at
    <root>/repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>   a referrer's descriptor (JSON)

Invariants: a file under `blobs/` is complete and matches its name. Uploads finish by fsync and
rename from `uploads/` (same file system), manifests by `atomic_write`, so a crash leaves either
the whole blob or none. Repository data lives under `_`-prefixed directories, which no name
component can start with, so `a` and `a/_tags` can never collide. A repository sees only blobs
linked into it (pushed or mounted there), as the reference registry does. Links and tags are
written after the content they point at. Every method does blocking file I/O: call them from a
thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from kubelite.images.registry.manifests import ManifestInfo, check_manifest
from kubelite.images.registry.rules import Digest, RegistryError, parse_digest
from kubelite.lib.files import atomic_write


class RegistryStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.uploads = root / "uploads"
        self.repositories = root / "repositories"

    def ensure(self) -> None:
        for directory in (self.blobs, self.uploads, self.repositories):
            directory.mkdir(parents=True, exist_ok=True)

    # ----- blobs --------------------------------------------------------------------------------

    def blob_path(self, digest: Digest) -> Path:
        return self.blobs / digest.algorithm / digest.hex

    def repository(self, name: str) -> Path:
        return self.repositories / name

    def repository_exists(self, name: str) -> bool:
        return self.repository(name).is_dir()

    def linked_blob(self, name: str, digest: Digest) -> Path | None:
        """The blob's file if this repository holds it (as a blob or a manifest) and it exists."""
        repo = self.repository(name)
        linked = any((repo / kind / digest.algorithm / digest.hex).is_file() for kind in ("_blobs", "_manifests"))
        path = self.blob_path(digest)
        return path if linked and path.is_file() else None

    def link_blob(self, name: str, digest: Digest) -> None:
        link = self.repository(name) / "_blobs" / digest.algorithm / digest.hex
        link.parent.mkdir(parents=True, exist_ok=True)
        link.touch()

    def unlink_blob(self, name: str, digest: Digest) -> bool:
        """Forget the blob in this repository; its content stays for other repositories."""
        link = self.repository(name) / "_blobs" / digest.algorithm / digest.hex
        try:
            link.unlink()
        except FileNotFoundError:
            return False
        return True

    def adopt(self, path: Path, digest: Digest) -> None:
        """Publish a verified upload file as the blob `digest` (durable before it is visible)."""
        target = self.blob_path(digest)
        if target.is_file():  # same digest, same bytes: keep the one there
            path.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(path, target)
        _fsync_dir(target.parent)

    # ----- manifests and tags -------------------------------------------------------------------

    def missing(self, name: str, info: ManifestInfo) -> list[str]:
        """What the manifest refers to that this repository does not hold."""
        lost = [d for d in info.blobs if self.linked_blob(name, parse_digest(d)) is None]
        return lost + [d for d in info.manifests if self.manifest(name, parse_digest(d)) is None]

    def put_manifest(self, name: str, digest: Digest, data: bytes, info: ManifestInfo, tags: list[str]) -> None:
        path = self.blob_path(digest)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data, 0o644)
        repo = self.repository(name)
        _write_text(repo / "_manifests" / digest.algorithm / digest.hex, info.media_type)
        if info.subject:
            subject = parse_digest(info.subject)
            entry = repo / "_referrers" / subject.algorithm / subject.hex / f"{digest.algorithm}-{digest.hex}"
            _write_text(entry, json.dumps(info.referrer(str(digest), len(data))))
        for tag in tags:
            _write_text(repo / "_tags" / tag, str(digest))

    def resolve(self, name: str, reference: str) -> Digest | None:
        """A tag's digest; None when the repository has no such tag."""
        try:
            text = (self.repository(name) / "_tags" / reference).read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return parse_digest(text)

    def manifest(self, name: str, digest: Digest) -> tuple[str, bytes] | None:
        """(media type, bytes) of a manifest this repository holds."""
        try:
            media_type = (self.repository(name) / "_manifests" / digest.algorithm / digest.hex).read_text()
            return media_type, self.blob_path(digest).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def delete_manifest(self, name: str, digest: Digest) -> bool:
        """Drop the manifest from the repository, with the tags that point at it and its referrer entry."""
        stored = self.manifest(name, digest)
        if stored is None:
            return False
        repo = self.repository(name)
        for tag in self.tags(name) or []:
            if self.resolve(name, tag) == digest:
                (repo / "_tags" / tag).unlink(missing_ok=True)
        with contextlib.suppress(RegistryError):  # stored manifests were checked when pushed
            subject = check_manifest(stored[1], stored[0]).subject
            if subject:
                sd = parse_digest(subject)
                (repo / "_referrers" / sd.algorithm / sd.hex / f"{digest.algorithm}-{digest.hex}").unlink(missing_ok=True)
        (repo / "_manifests" / digest.algorithm / digest.hex).unlink(missing_ok=True)
        return True

    def delete_tag(self, name: str, tag: str) -> bool:
        try:
            (self.repository(name) / "_tags" / tag).unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def tags(self, name: str) -> list[str] | None:
        """The repository's tags in ASCII order; None when there is no such repository."""
        repo = self.repository(name)
        if not repo.is_dir():
            return None
        try:
            return sorted(entry for entry in os.listdir(repo / "_tags") if not entry.startswith("."))
        except FileNotFoundError:
            return []

    def referrers(self, name: str, digest: Digest) -> list[dict[str, Any]]:
        directory = self.repository(name) / "_referrers" / digest.algorithm / digest.hex
        try:
            entries = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for entry in entries:
            with contextlib.suppress(FileNotFoundError, ValueError):
                found.append(json.loads(entry.read_text()))
        return found

    def catalog(self) -> list[str]:
        """Every repository that holds a manifest, in ASCII order."""
        found = []
        for current, dirs, _files in os.walk(self.repositories):
            if "_manifests" in dirs:
                found.append(os.path.relpath(current, self.repositories))
            dirs[:] = [d for d in dirs if not d.startswith("_")]
        return sorted(found)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode(), 0o644)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

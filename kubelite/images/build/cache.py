"""The build cache: what each build step produced, by a key that fixes everything it depended on.

    <images-root>/build-cache/entries/<key hex>.json   {"layer": {...} | null, "created", "createdBy"}
    <images-root>/build-cache/blobs/sha256/<hex>       the layer blobs the entries name
    <images-root>/build-cache/tmp/                     blobs being written

A step's key is the sha256 of (the previous step's key, the instruction as it runs after variable
substitution, and an extra part: for COPY/ADD the digest of everything copied with its metadata,
for RUN the environment, user, workdir, shell and network it runs with). A stage starts from its
base image's ID, so the chain of keys pins the whole filesystem and config below each step: a
rebuild with nothing changed finds every key (and, taking the same layers and creation times,
produces the same image ID), and a change anywhere misses from that step on.

Blobs live here rather than only in the store so `kubelite image rm`/`prune` (which collect blobs
no image names) never empties the cache under a later build; a hit whose blob is gone is a miss.
Entries and blobs are written to temporary files and renamed, so concurrent builds only ever see
whole files; `prune` empties the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelite.images.blobs import hex_of
from kubelite.images.build.tarlayer import LayerBlob


@dataclass(frozen=True)
class CacheEntry:
    layer: LayerBlob | None  # None: the step changed only the config
    created: str
    created_by: str

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer.to_json() if self.layer else None, "created": self.created,
                "createdBy": self.created_by}


def step_key(parent: str, text: str, extra: str = "") -> str:
    return "sha256:" + hashlib.sha256(json.dumps([parent, text, extra]).encode()).hexdigest()


class BuildCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries = root / "entries"
        self.blobs = root / "blobs" / "sha256"
        self.tmp = root / "tmp"

    def get(self, key: str) -> CacheEntry | None:
        try:
            raw = json.loads((self.entries / hex_of(key)).read_text())
            layer = LayerBlob.from_json(raw["layer"]) if raw.get("layer") else None
            entry = CacheEntry(layer, str(raw["created"]), str(raw.get("createdBy", "")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if layer is not None and not self.blob_path(layer.digest).is_file():
            return None
        return entry

    def put(self, key: str, entry: CacheEntry) -> None:
        self.entries.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.entries / hex_of(key), json.dumps(entry.to_json()).encode())

    def blob_path(self, digest: str) -> Path:
        return self.blobs / hex_of(digest)

    def new_blob(self) -> Path:
        """A fresh temporary path to write a layer blob to (then `commit_blob`)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="layer-", dir=self.tmp)
        os.close(fd)
        return Path(name)

    def commit_blob(self, tmp: Path, layer: LayerBlob) -> Path:
        self.blobs.mkdir(parents=True, exist_ok=True)
        final = self.blob_path(layer.digest)
        if final.is_file():
            tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, final)
        return final

    def remove_stale_tmp(self, *, min_age: float = 3600.0) -> None:
        """Blobs an interrupted build left half-written (old enough to be nobody's)."""
        with contextlib.suppress(FileNotFoundError):
            for path in self.tmp.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - path.stat().st_mtime > min_age:
                        path.unlink()

    def prune(self) -> tuple[int, int]:
        """Empty the cache; returns (entries, bytes of blobs) removed."""
        entries = len(os.listdir(self.entries)) if self.entries.is_dir() else 0
        size = sum(p.stat().st_size for p in self.blobs.glob("*")) if self.blobs.is_dir() else 0
        trash = self.root.with_name(f".{self.root.name}-removing-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.root, trash)
            shutil.rmtree(trash, ignore_errors=True)
        return entries, size


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".entry-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise

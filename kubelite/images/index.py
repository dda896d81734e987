"""The store's names: `index.json` at the store root, an OCI image index (so the store is itself an
OCI image layout that skopeo or umoci can read).

Each entry is the top-level descriptor of one image (a manifest, or an index of platform
manifests) with its normalised reference in `org.opencontainers.image.ref.name` (and
`io.containerd.image.name`, as containerd writes it); an image that lost all its names is kept as
one entry without annotations (Docker's `<none>:<none>`). Writers hold the store lock (a flock on
`<root>/lock`) across read-modify-write and replace the file atomically (write, fsync, rename);
readers never lock: they see the old or the new file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from kubelite.images.oci import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    OCI_INDEX,
    OCI_LAYOUT_VERSION,
    Descriptor,
    ImageFormatError,
    load_json,
    parse_index,
)


@dataclass(frozen=True)
class Entry:
    name: str  # normalised reference; "" for an untagged image
    target: Descriptor  # the image's top-level manifest or index

    @property
    def digest(self) -> str:
        return self.target.digest


def entry_from_descriptor(desc: Descriptor) -> Entry:
    name = desc.annotation(ANNOTATION_IMAGE_NAME) or desc.annotation(ANNOTATION_REF_NAME)
    return Entry(name, replace(desc, annotations=(), platform=()))


def entry_descriptor(entry: Entry) -> Descriptor:
    if not entry.name:
        return entry.target
    return replace(entry.target, annotations=((ANNOTATION_IMAGE_NAME, entry.name), (ANNOTATION_REF_NAME, entry.name)))


def with_name(entries: list[Entry], name: str, target: Descriptor) -> list[Entry]:
    """`name` now points at `target`; the image it left keeps an untagged entry if nothing else names it."""
    old = next((e for e in entries if e.name == name), None)
    out = [e for e in entries if e.name != name and not (not e.name and e.digest == target.digest)]
    out.append(Entry(name, target))
    return _keep_untagged(out, old)


def with_untagged(entries: list[Entry], target: Descriptor) -> list[Entry]:
    if any(e.digest == target.digest for e in entries):
        return entries
    return [*entries, Entry("", target)]


def _keep_untagged(entries: list[Entry], old: Entry | None) -> list[Entry]:
    if old is None or any(e.digest == old.digest for e in entries):
        return entries
    return [*entries, Entry("", old.target)]


class Index:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "index.json"
        self._cache: tuple[tuple[int, int, int], list[Entry]] | None = None

    def init_layout(self) -> None:
        layout = self.root / "oci-layout"
        if not layout.exists():
            _atomic_write(layout, json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}).encode())
        if not self.path.exists():
            with self.locked():
                if not self.path.exists():
                    self.write([])

    def entries(self) -> list[Entry]:
        """The current entries (re-read only when the file was replaced)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cache is None or self._cache[0] != key:
            doc = load_json(self.path.read_bytes(), str(self.path))
            self._cache = (key, [entry_from_descriptor(d) for d in parse_index(doc)])
        return list(self._cache[1])

    def write(self, entries: list[Entry]) -> None:
        """Replace the index (call with the lock held)."""
        names = [e.name for e in entries if e.name]
        if len(names) != len(set(names)):
            raise ImageFormatError(f"duplicate names in the image index: {sorted(names)}")
        ordered = sorted(entries, key=lambda e: (e.name == "", e.name, e.digest))
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX,
               "manifests": [entry_descriptor(e).to_json() for e in ordered]}
        _atomic_write(self.path, json.dumps(doc, indent=1).encode() + b"\n")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

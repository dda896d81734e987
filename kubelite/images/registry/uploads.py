"""Blob upload sessions: bytes streamed to `uploads/<uuid>/data` while they are hashed, then
verified against the client's digest and published into the blob store, or thrown away.

Flow: `start(name)` makes the session directory; `append(upload, stream)` copies a request body
to the end of the file (a chunk, or the whole blob); `finish(upload, digest)` compares the digest
of everything received with the one the client named: a match is renamed into `blobs/` (after
fsync), a mismatch deletes the session and raises DIGEST_INVALID, so nothing unverified is ever
stored under a digest.

Invariants: one request at a time works on a session (`Upload.lock`). `size` and the running hash
cover exactly the bytes in the file, also after a client disconnects mid-chunk (the upload stays
resumable from `size`, as the spec's resumable push wants). The hash lives in memory; a session
found on disk after a restart is re-hashed from its file when next needed. File writes and hashing
run in a worker thread, overlapped with reading the next megabyte from the socket.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelite.images.registry.rules import UPLOAD_ID, Digest, RegistryError
from kubelite.images.registry.storage import RegistryStorage

log = logging.getLogger(__name__)

CHUNK = 1 << 20
STALE_AFTER = 7 * 24 * 3600.0  # the reference registry's purge age for abandoned uploads


@dataclass
class Upload:
    id: str
    name: str
    directory: Path
    size: int = 0
    hasher: Any = None  # hashlib sha256 over the file's bytes; None: re-hash from the file
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def location(self) -> str:
        return f"/v2/{self.name}/blobs/uploads/{self.id}"


class Uploads:
    def __init__(self, storage: RegistryStorage) -> None:
        self.storage = storage
        self.active: dict[str, Upload] = {}

    async def start(self, name: str) -> Upload:
        upload_id = str(uuid.uuid4())
        directory = self.storage.uploads / upload_id
        await asyncio.to_thread(_create, directory, name)
        upload = Upload(upload_id, name, directory, hasher=hashlib.sha256())
        self.active[upload_id] = upload
        return upload

    async def get(self, name: str, upload_id: str) -> Upload:
        """The session `upload_id` of repository `name` (in memory, or found on disk after a restart)."""
        upload = self.active.get(upload_id)
        if upload is None and UPLOAD_ID.fullmatch(upload_id):
            upload = await asyncio.to_thread(self._load, upload_id)
        if upload is None or upload.name != name:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", {"name": name, "uuid": upload_id})
        return upload

    def _load(self, upload_id: str) -> Upload | None:
        directory = self.storage.uploads / upload_id
        try:
            name = (directory / "repository").read_text().strip()
            size = (directory / "data").stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        return self.active.setdefault(upload_id, Upload(upload_id, name, directory, size=size))

    async def append(self, upload: Upload, stream: Any) -> int:
        """Copy `stream` (an aiohttp StreamReader) to the end of the upload; returns the bytes added."""
        if upload.hasher is None:
            upload.hasher = await asyncio.to_thread(_hash_file, upload.data, "sha256")
        before = upload.size
        try:
            with open(upload.data, "ab") as out:  # opening for append does not block meaningfully
                await _copy(stream, upload, out)
        finally:
            size = upload.data.stat().st_size
            if size != upload.size:  # a failed write left bytes the hash missed: re-hash when next needed
                upload.size, upload.hasher = size, None
        return upload.size - before

    async def truncate(self, upload: Upload, size: int) -> None:
        """Drop what a rejected chunk added."""
        await asyncio.to_thread(_truncate, upload.data, size)
        upload.size, upload.hasher = size, None

    async def finish(self, upload: Upload, digest: Digest) -> None:
        """Verify and publish the upload as blob `digest` of its repository; the session ends either way."""
        try:
            if digest.algorithm == "sha256" and upload.hasher is not None:
                actual = upload.hasher.hexdigest()
            else:
                actual = (await asyncio.to_thread(_hash_file, upload.data, digest.algorithm)).hexdigest()
            if actual != digest.hex:
                raise RegistryError("DIGEST_INVALID", {"digest": str(digest), "received": f"{digest.algorithm}:{actual}",
                                                       "size": upload.size},
                                    message=f"the {upload.size} bytes received have digest {digest.algorithm}:{actual}, "
                                            f"not {digest}: nothing was stored")
            await asyncio.to_thread(self.storage.adopt, upload.data, digest)
            await asyncio.to_thread(self.storage.link_blob, upload.name, digest)
        finally:
            await self.cancel(upload)

    async def cancel(self, upload: Upload) -> None:
        self.active.pop(upload.id, None)
        await asyncio.to_thread(shutil.rmtree, upload.directory, True)

    def purge_stale(self, *, now: float | None = None, max_age: float = STALE_AFTER) -> int:
        """Remove sessions untouched for `max_age` (blocking: call from a thread or before serving)."""
        now = time.time() if now is None else now
        removed = 0
        for directory in self.storage.uploads.iterdir():
            try:
                age = now - max(directory.stat().st_mtime, (directory / "data").stat().st_mtime)
            except FileNotFoundError:
                age = max_age + 1
            if age > max_age and directory.name not in self.active:
                shutil.rmtree(directory, ignore_errors=True)
                removed += 1
        if removed:
            log.info("registry: removed %d abandoned upload(s)", removed)
        return removed


def _create(directory: Path, name: str) -> None:
    directory.mkdir(parents=True)
    (directory / "repository").write_text(name)
    (directory / "data").touch()


async def _copy(stream: Any, upload: Upload, out: Any) -> None:
    """Read a megabyte while the previous one is written and hashed in a thread."""
    pending: asyncio.Future[None] | None = None
    try:
        buffer = bytearray()
        while chunk := await stream.read(CHUNK):
            buffer += chunk
            if len(buffer) >= CHUNK:
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(asyncio.to_thread(_write, upload, out, bytes(buffer)))
                buffer.clear()
        if pending is not None:
            await pending
            pending = None
        if buffer:
            await asyncio.to_thread(_write, upload, out, bytes(buffer))
    finally:
        if pending is not None:  # the body broke off: let the write in flight land, keep the session
            await asyncio.wait([pending])


def _write(upload: Upload, out: Any, data: bytes) -> None:
    out.write(data)
    out.flush()  # the file's size is the truth after a failure (see append)
    upload.hasher.update(data)  # after the write: the hash never covers bytes the file lacks
    upload.size += len(data)


def _truncate(path: Path, size: int) -> None:
    with open(path, "rb+") as f:
        f.truncate(size)


def _hash_file(path: Path, algorithm: str) -> Any:
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
    return hasher

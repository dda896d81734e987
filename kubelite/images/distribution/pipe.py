"""A response body streamed from the event loop into the store's (blocking) ingest on a thread.

`stream_into(ingest, chunks, descriptor)` runs `Ingest.add_stream` in a worker thread, reading
from a `BytePipe` the event loop fills as the response arrives; add_stream hashes and writes each
chunk and verifies digest and size at the end, so hashing and disk writes never block the loop and
nothing is kept in memory beyond the pipe's bound (back-pressure: the loop waits when the thread
falls behind). A body that breaks off, or brings more bytes than announced, closes the pipe with
an error: add_stream fails and the caller aborts the ingest, so no partial blob survives.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from kubelite.images.blobs import DigestMismatch, Ingest
from kubelite.images.oci import Descriptor

PIPE_LIMIT = 8 << 20  # bytes buffered between the loop and the thread


class PipeClosed(Exception):
    """The writing side gave up (its error is the cause)."""


class BytePipe:
    def __init__(self, loop: asyncio.AbstractEventLoop, *, limit: int = PIPE_LIMIT) -> None:
        self._loop, self._limit = loop, limit
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._full = False
        self._eof = False
        self._error: BaseException | None = None
        self._room = asyncio.Event()
        self._room.set()

    # -- the event loop's side -------------------------------------------------------------------------

    async def write(self, chunk: bytes, *, reader: asyncio.Future[Any]) -> bool:
        """Queue a chunk; False when the reader is gone (it finished or failed)."""
        if not self._room.is_set():
            waiter: asyncio.Future[Any] = asyncio.ensure_future(self._room.wait())
            await asyncio.wait([waiter, reader], return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                waiter.cancel()
                return False
        if reader.done():
            return False
        with self._cond:
            self._chunks.append(chunk)
            self._buffered += len(chunk)
            if self._buffered >= self._limit:
                self._full = True
                self._room.clear()
            self._cond.notify()
        return True

    def close(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._eof, self._error = True, error
            self._cond.notify()

    # -- the reader thread's side (a file-like `read`) -----------------------------------------------

    def read(self, size: int = -1) -> bytes:
        with self._cond:
            while not self._chunks and not self._eof:
                self._cond.wait()
            if not self._chunks:
                if self._error is not None:
                    raise PipeClosed(str(self._error)) from self._error
                return b""
            chunk = self._chunks.popleft()
            if 0 < size < len(chunk):
                chunk, rest = chunk[:size], chunk[size:]
                self._chunks.appendleft(rest)
            self._buffered -= len(chunk)
            if self._full and self._buffered < self._limit:
                self._full = False
                self._loop.call_soon_threadsafe(self._room.set)
            return chunk


async def stream_into(ingest: Ingest, chunks: AsyncIterator[bytes], desc: Descriptor, *,
                      on_bytes: Callable[[int], None] = lambda n: None) -> int:
    """Copy `chunks` into `ingest` as the blob `desc` (verified); returns the bytes received."""
    pipe = BytePipe(asyncio.get_running_loop())
    reader: asyncio.Future[Any] = asyncio.ensure_future(
        asyncio.to_thread(ingest.add_stream, pipe, digest=desc.digest, size=desc.size))  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > desc.size:
                raise DigestMismatch(f"blob {desc.digest}: the registry sent more than the {desc.size} bytes "
                                     "its descriptor gives")
            if not await pipe.write(chunk, reader=reader):
                break
            on_bytes(received)
    except BaseException as e:
        pipe.close(e)
        await _settle(reader)
        raise
    pipe.close()
    await asyncio.shield(reader)
    return received


async def _settle(reader: asyncio.Future[Any]) -> None:
    """Wait for the thread to finish before the ingest is aborted under it (its error is the
    writer's own, already being raised)."""
    with contextlib.suppress(BaseException):  # the writer's exception is the one that matters
        await asyncio.shield(reader)

"""Leases: content that an operation in progress counts on, kept from the garbage collector.

    <root>/leases/<random>.lease    {"pid": ..., "digests": [...]}: blob digests and layer diff IDs

The collector deletes what no name reaches. A pull looks at what the store already has, fetches
the rest, unpacks, and names the image at the end: a collection in between would delete a blob
the pull counted on (nothing named it when the pull looked) or a snapshot it has just unpacked.
So the pull takes a lease on everything its image needs *before* it looks, and the collector keeps
whatever a live lease lists.

Liveness needs no clean-up protocol: a holder keeps an exclusive flock on its lease file for as
long as the lease lives (the kernel drops it when the process dies, however it dies). The
collector, under the store lock, honours every lease file it cannot lock and deletes the ones it
can (their holder is gone). Lease files are created and extended under the store lock too, so the
collector never reads a half-written one, nor misses one taken while it runs. Nothing here is
fsynced: after a crash every lease is stale anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".lease"


class Lease:
    """One holder's lease; `release` (or leaving the `with` block) ends it."""

    def __init__(self, leases: Leases, path: Path, fd: int, digests: set[str]) -> None:
        self._leases, self.path, self._fd = leases, path, fd
        self.digests = digests

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def add(self, digests: Iterable[str]) -> None:
        """Hold these too (takes the store lock: never call it with the lock held)."""
        more = set(digests) - self.digests
        if more and self._fd >= 0:
            with self._leases.lock():
                self.digests |= more
                _write(self._fd, self.digests)

    def release(self) -> None:
        if self._fd < 0:
            return
        self.path.unlink(missing_ok=True)  # before the flock goes: a collector never sees it stale
        os.close(self._fd)
        self._fd = -1


class Leases:
    def __init__(self, root: Path, lock: Callable[[], contextlib.AbstractContextManager[None]]) -> None:
        self.dir = root / "leases"
        self.lock = lock  # the store lock (re-entrant it is not: callers must not hold it)

    def take(self, digests: Iterable[str] = ()) -> Lease:
        """A new lease on `digests`, in force when this returns (takes the store lock)."""
        self.dir.mkdir(mode=0o700, exist_ok=True)
        wanted = set(digests)
        with self.lock():
            path = self.dir / f"{secrets.token_hex(8)}{SUFFIX}"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                _write(fd, wanted)
            except BaseException:
                path.unlink(missing_ok=True)
                os.close(fd)
                raise
        return Lease(self, path, fd, wanted)

    def held(self) -> set[str]:
        """Every digest a live lease holds (call with the store lock held). Lease files whose
        holder has died are deleted on the way."""
        held: set[str] = set()
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return held
        for name in names:
            if name.endswith(SUFFIX):
                held |= self._read_live(self.dir / name)
        return held

    def _read_live(self, path: Path) -> set[str]:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # released just now
            return set()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # its holder is alive
                return _read(fd, path)
            path.unlink(missing_ok=True)  # we got the lock: nobody holds it any more
            return set()
        finally:
            os.close(fd)


def _write(fd: int, digests: set[str]) -> None:
    data = json.dumps({"pid": os.getpid(), "digests": sorted(digests)}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _read(fd: int, path: Path) -> set[str]:
    data = b""
    while chunk := os.pread(fd, 1 << 16, len(data)):
        data += chunk
    with contextlib.suppress(ValueError, TypeError, KeyError):
        digests = json.loads(data)["digests"]
        if isinstance(digests, list):
            return {str(d) for d in digests}
    log.warning("lease %s is unreadable; its content is not protected", path)
    return set()

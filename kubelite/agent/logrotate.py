"""Container log rotation by size, as the kubelet's container log manager does it.

Every `interval` the rotator looks at each running container's CRI log file; one that grew past
`max_size` is renamed to `<file>.<timestamp>` and the runtime is asked to reopen its log
(`reopen_log`, CRI ReopenContainerLog), so new output starts a new file. At most `max_files` files
are kept per container (the live one and the newest rotated ones). If the runtime cannot reopen
(the container just stopped), the rename is undone so no output is lost from `kubectl logs`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_SIZE = 10 * 1024 * 1024  # upstream's containerLogMaxSize default (10Mi)
MAX_FILES = 5  # upstream's containerLogMaxFiles default
INTERVAL = 10.0


def rotated_files(path: Path) -> list[Path]:
    """The rotated files of a log, oldest first (the timestamp suffix sorts by time)."""
    return sorted(p for p in path.parent.glob(f"{path.name}.*") if p.is_file())


def rotate_if_needed(path: Path, *, reopen: Callable[[], bool], max_size: int = MAX_SIZE,
                     max_files: int = MAX_FILES, now: datetime | None = None) -> bool:
    """Rotate `path` if it is over `max_size`; True when it was rotated."""
    try:
        if path.stat().st_size < max_size:
            return False
    except FileNotFoundError:
        return False
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S.%f")
    rotated = path.with_name(f"{path.name}.{stamp}")
    path.rename(rotated)
    if not reopen():
        rotated.rename(path)
        return False
    for old in rotated_files(path)[:-(max_files - 1) or None]:
        old.unlink(missing_ok=True)
    return True


class LogRotator:
    def __init__(self, runtime: Any, *, max_size: int = MAX_SIZE, max_files: int = MAX_FILES,
                 interval: float = INTERVAL) -> None:
        self.runtime = runtime
        self.max_size, self.max_files, self.interval = max_size, max_files, interval

    def enabled(self) -> bool:
        return callable(getattr(self.runtime, "reopen_log", None)) and callable(
            getattr(self.runtime, "log_path", None))

    def rotate_all(self) -> int:
        rotated = 0
        for uid in self.runtime.pod_uids():
            status = self.runtime.pod_status(uid)
            for name, state in (status.containers.items() if status else ()):
                path = self.runtime.log_path(uid, name) if state.state == "running" else None
                if path is not None and rotate_if_needed(path, reopen=self._reopener(uid, name),
                                                         max_size=self.max_size, max_files=self.max_files):
                    rotated += 1
        return rotated

    def _reopener(self, uid: str, name: str) -> Callable[[], bool]:
        return lambda: bool(self.runtime.reopen_log(uid, name))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.rotate_all)
            except Exception:
                log.exception("container log rotation failed; retrying in %.0fs", self.interval)

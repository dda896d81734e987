"""Progress of pulls and pushes, printed as Docker prints it.

Each layer is an item named by its short digest (12 hex digits) whose status moves on:
`Pulling fs layer` -> `Downloading [==>   ]  12.35MB/64MB` -> `Verifying Checksum` ->
`Download complete` -> `Extracting` -> `Pull complete` (or `Already exists`); for pushes
`Preparing` -> `Pushing ...` -> `Pushed` (or `Layer already exists`, `Mounted from <repo>`).

On a terminal (`TtyProgress`) every item keeps one line that is rewritten in place (ANSI cursor
moves; byte counts at most ten times a second per item). Otherwise (`LineProgress`: pipes, logs,
CI) only an item's final status is printed, one line per layer. `note` prints a line of its own
(`latest: Pulling from library/busybox`, `Digest: ...`). The kubelet passes no progress at all.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

BAR_WIDTH = 50
REDRAW_SECONDS = 0.1
FINAL = ("Pull complete", "Already exists", "Pushed", "Layer already exists", "Mounted from")


class Progress(Protocol):
    def note(self, text: str) -> None: ...

    def update(self, item: str, status: str, *, current: int | None = None, total: int | None = None) -> None: ...


class NoProgress:
    def note(self, text: str) -> None:
        pass

    def update(self, item: str, status: str, *, current: int | None = None, total: int | None = None) -> None:
        pass


class LineProgress:
    """One line per item, when it reaches a final status."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._done: dict[str, str] = {}

    def note(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def update(self, item: str, status: str, *, current: int | None = None, total: int | None = None) -> None:
        if status.startswith(FINAL) and self._done.get(item) != status:
            self._done[item] = status
            self.note(f"{item}: {status}")


class TtyProgress:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._items: list[str] = []
        self._lines: dict[str, str] = {}
        self._drawn: dict[str, float] = {}

    def note(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
        self._items.clear()  # lines printed before a note are no longer rewritten
        self._lines.clear()

    def update(self, item: str, status: str, *, current: int | None = None, total: int | None = None) -> None:
        line = f"{item}: {status}"
        if current is not None:
            line += " " + progress_text(current, total)
        previous = self._lines.get(item)
        now = time.monotonic()
        if previous is not None and current is not None and previous.startswith(f"{item}: {status} ") \
                and now - self._drawn.get(item, 0.0) < REDRAW_SECONDS and current != total:
            return
        self._lines[item] = line
        self._drawn[item] = now
        if item not in self._items:
            self._items.append(item)
            self.out.write(line + "\n")
        else:
            up = len(self._items) - self._items.index(item)
            self.out.write(f"\x1b[{up}A\r\x1b[2K{line}\x1b[{up}B\r")
        self.out.flush()


def progress_for(out: TextIO | None = None, *, quiet: bool = False) -> Progress:
    out = out or sys.stdout
    if quiet:
        return NoProgress()
    return TtyProgress(out) if out.isatty() else LineProgress(out)


def progress_text(current: int, total: int | None) -> str:
    if not total:
        return human_size(current)
    filled = min(BAR_WIDTH, BAR_WIDTH * current // total)
    bar = "=" * filled + (">" if filled < BAR_WIDTH else "") + " " * max(BAR_WIDTH - filled - 1, 0)
    return f"[{bar}]  {human_size(current)}/{human_size(total)}"


def human_size(size: float) -> str:
    """Docker's units.HumanSize: decimal units, four significant digits (12.35MB, 64MB, 512B)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.4g}{unit}"
        value /= 1000
    return f"{size}B"


def short_id(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]

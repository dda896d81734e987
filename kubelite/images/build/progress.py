"""Build progress as `docker build --progress=plain` prints it (buildkit's plain output):

    #3 [build 2/4] RUN make
    #3 0.412 cc -o app main.c
    #3 DONE 1.3s
    #4 [2/3] COPY server.js .
    #4 CACHED

Each step gets the next `#N`; a RUN's output lines are prefixed with the step and the seconds
since it started. Output goes to one text stream, flushed per line so a pipe sees it live.
"""

from __future__ import annotations

import time
from typing import TextIO


class Step:
    def __init__(self, out: TextIO | None, number: int, title: str) -> None:
        self.out, self.number, self.started = out, number, time.monotonic()
        self._print(title)

    def _print(self, text: str) -> None:
        if self.out is not None:
            self.out.write(f"#{self.number} {text}\n")
            self.out.flush()

    def line(self, text: str) -> None:
        self._print(f"{time.monotonic() - self.started:.3f} {text}")

    def note(self, text: str) -> None:
        self._print(text)

    def cached(self) -> None:
        self._print("CACHED")

    def done(self) -> float:
        seconds = time.monotonic() - self.started
        self._print(f"DONE {seconds:.1f}s")
        return seconds

    def error(self, message: str) -> None:
        self._print(f"ERROR: {message}")


class Progress:
    def __init__(self, out: TextIO, *, quiet: bool = False) -> None:
        self.out = out
        self.quiet = quiet
        self.count = 0

    def step(self, title: str) -> Step:
        self.count += 1
        return Step(None if self.quiet else self.out, self.count, title)

    def warn(self, text: str) -> None:
        if not self.quiet:
            self.out.write(f"WARNING: {text}\n")
            self.out.flush()

"""Background daemons of `kubelite start`: spawn detached, track by PID file, stop by PID.

Each daemon is `kubelite <args>` in its own session with its output in `<data>/logs/<name>.log`.
Stopping signals the recorded PID only (never a process found by name).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Daemon:
    name: str
    data_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) and _is_ours(pid) else None

    def start(self, args: list[str], *, wrapper: list[str] | None = None) -> int:
        """`kubelite <args>` in the background; `wrapper`: a command prefix that execs it (such as
        `nsenter --net=...`, so the PID recorded is the daemon's own)."""
        running = self.pid()
        if running is not None:
            return running
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log, open(os.devnull, "rb") as devnull:
            proc = subprocess.Popen([*(wrapper or []), sys.executable, "-m", "kubelite.cli.main", *args], stdin=devnull,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def stop(self, timeout: float = 10.0) -> bool:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def last_log_lines(self, count: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-count:])
        except OSError:
            return "(no log)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


def _is_ours(pid: int) -> bool:
    """Guard against a recycled PID: the process must be a kubelite command."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"kubelite" in f.read()
    except OSError:
        return False

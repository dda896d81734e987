"""One container's lifecycle through conmon and runc.

create: `conmon` (a per-container monitor that outlives the agent) runs `runc create` on the
bundle, then reports the container's pid on a sync pipe (`_OCI_SYNCPIPE`) and stays as its
subreaper: it copies the container's stdio into a CRI-format log file (`k8s-file`), serves the
attach socket (`--full-attach`: `<bundle>/attach`) and the `ctl` fifo (terminal resize), and when
the container exits writes the exit code to `<bundle>/exit` and `<exits dir>/<id>` (and `oom` if
the memory cgroup OOM-killed it) before exiting itself. Then `runc start` runs the process.

stop: the stop signal, then SIGKILL once the grace period is over; the exit is awaited on a pidfd
of conmon (it exits right after writing the exit file). `runc delete` afterwards (the cgroup leaf
goes with it). Nothing here keeps per-container state in memory: everything is read back from the
bundle, which is what lets a restarted agent pick containers up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelite.agent.runtime.runc import system
from kubelite.agent.runtime.runc.state import Layout

Obj = dict[str, Any]
CREATE_TIMEOUT = 60.0


class ContainerError(Exception):
    pass


@dataclass(frozen=True)
class ExitInfo:
    code: int
    oom: bool
    at: float  # epoch seconds (the exit file's mtime)


class Runc:
    """runc and conmon for containers whose bundles live in `layout.containers`."""

    def __init__(self, layout: Layout, *, runc: str = "runc", conmon: str = "conmon") -> None:
        # conmon wants the runtime as an absolute path
        self.layout, self.runc_bin, self.conmon_bin = layout, shutil.which(runc) or runc, conmon

    @property
    def argv(self) -> list[str]:
        """runc with this runtime's state directory, before the subcommand."""
        return [self.runc_bin, "--root", str(self.layout.runc_root)]

    def _runc(self, *args: str) -> list[str]:
        return [*self.argv, *args]

    async def create(self, cid: str, *, log_path: Path, tty: bool, stdin: bool, stdin_once: bool) -> int:
        """conmon + `runc create`; the container's pid once it exists (its process not yet started)."""
        bundle = self.layout.container_dir(cid)
        argv = [self.conmon_bin, "--api-version", "1", "-c", cid, "-u", cid, "-n", cid,
                "-r", self.runc_bin, "-b", str(bundle), "-p", str(bundle / "pidfile"),
                "-P", str(bundle / "conmon.pid"), "-l", f"k8s-file:{log_path}",
                "--exit-dir", str(self.layout.exits), "--persist-dir", str(bundle), "--full-attach",
                "--runtime-arg", "--root",
                "--runtime-arg", str(self.layout.runc_root)]
        if tty:
            argv.append("-t")
        if stdin:
            argv.append("-i")
            if not stdin_once:
                argv.append("--leave-stdin-open")
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            with open(bundle / "conmon.log", "ab") as errlog:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.DEVNULL, stdout=errlog, stderr=errlog, pass_fds=(write_fd,),
                    cwd=str(bundle), env={**os.environ, "_OCI_SYNCPIPE": str(write_fd)})
            os.close(write_fd)
            write_fd = -1
            message = await asyncio.wait_for(_read_sync(read_fd), CREATE_TIMEOUT)
            await proc.wait()
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)
        pid = int(message.get("data", -1)) if message else -1
        if pid <= 0:
            reason = str((message or {}).get("message") or self._conmon_log(bundle) or "conmon exited")
            raise ContainerError(_runc_message(reason))
        return pid

    def _conmon_log(self, bundle: Path) -> str:
        with contextlib.suppress(OSError):
            return (bundle / "conmon.log").read_text(errors="replace").strip()
        return ""

    async def start(self, cid: str) -> None:
        result = await system.run(self._runc("start", cid))
        if result.rc != 0:
            raise ContainerError(_runc_message(result.error()))

    async def kill(self, cid: str, sig: int) -> bool:
        """Signal the container's init; False when it is not running (any more)."""
        result = await system.run(self._runc("kill", cid, str(int(sig))))
        return result.rc == 0

    async def delete(self, cid: str, *, force: bool = False) -> None:
        args = ["delete", "--force", cid] if force else ["delete", cid]
        result = await system.run(self._runc(*args))
        if result.rc != 0 and "does not exist" not in result.error() and "not exist" not in result.error():
            raise ContainerError(_runc_message(result.error()))

    def exit_info(self, cid: str) -> ExitInfo | None:
        bundle = self.layout.container_dir(cid)
        path = bundle / "exit"
        try:
            text = path.read_text().strip()
            at = path.stat().st_mtime
        except OSError:
            return None
        if not text:
            return None  # conmon writes the file whole; an empty one is still being written
        return ExitInfo(int(text), (bundle / "oom").exists(), at)

    def conmon_pid(self, cid: str) -> int | None:
        try:
            pid = int((self.layout.container_dir(cid) / "conmon.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if system.pid_alive(pid, cmdline_contains=cid) else None

    def container_pid(self, cid: str) -> int | None:
        try:
            pid = int((self.layout.container_dir(cid) / "pidfile").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if system.pid_alive(pid) else None

    async def wait_exit(self, cid: str, timeout: float | None = None) -> ExitInfo | None:
        """The exit once conmon has recorded it; None on timeout."""
        info = self.exit_info(cid)
        if info is not None:
            return info
        pid = self.conmon_pid(cid)
        if pid is not None:
            try:
                await asyncio.wait_for(_pid_exit(pid), timeout)
            except TimeoutError:
                return None
        info = self.exit_info(cid)
        if info is None and pid is None and self.container_pid(cid) is not None:
            # conmon is gone but the process runs (conmon killed by hand): poll the process itself
            return await self._poll_process(cid, timeout)
        return info

    async def wait_conmon(self, cid: str, *, timeout: float) -> None:
        pid = self.conmon_pid(cid)
        if pid is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_pid_exit(pid), timeout)

    def reopen_log(self, cid: str) -> bool:
        """Ask conmon to reopen the container's log file (after the kubelet rotated it away)."""
        return write_ctl(self.layout.container_dir(cid), "2 0 0\n")

    async def _poll_process(self, cid: str, timeout: float | None) -> ExitInfo | None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self.container_pid(cid) is not None:
            if deadline is not None and loop.time() >= deadline:
                return None
            await asyncio.sleep(0.1)
        return self.exit_info(cid)

    async def stop(self, cid: str, *, stop_signal: int, grace: float) -> ExitInfo | None:
        """stop_signal, then SIGKILL after `grace` seconds; the exit, once recorded."""
        if grace > 0 and await self.kill(cid, stop_signal):
            info = await self.wait_exit(cid, grace)
            if info is not None:
                return info
        await self.kill(cid, int(signal.SIGKILL))
        return await self.wait_exit(cid, 10.0)


def write_ctl(bundle: Path, message: str) -> bool:
    """A message for conmon's ctl fifo ("1 h w": resize the terminal, "2 0 0": reopen the log)."""
    try:
        fd = os.open(bundle / "ctl", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        os.write(fd, message.encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


async def _pid_exit(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        await _readable(fd)
    finally:
        os.close(fd)


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def _read_sync(fd: int) -> Obj | None:
    """The first JSON message conmon writes on the sync pipe; None if it closes without one."""
    os.set_blocking(fd, False)
    buffer = b""
    while b"\n" not in buffer:
        await _readable(fd)
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        if not chunk:
            break
        buffer += chunk
    line = buffer.split(b"\n", 1)[0].strip()
    if not line:
        return None
    try:
        return dict(json.loads(line))
    except ValueError:
        return {"data": -1, "message": line.decode(errors="replace")}


def _runc_message(text: str) -> str:
    """runc's logrus line reduced to its msg, as containerd reports it."""
    text = text.strip()
    for line in reversed(text.splitlines()):
        if 'msg="' in line:
            msg = line.split('msg="', 1)[1].rsplit('"', 1)[0]
            return msg.replace('\\"', '"').replace("\\\\", "\\")
    return text

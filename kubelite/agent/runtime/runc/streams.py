"""exec and attach sessions (the StreamSession of `runtime/streaming.py`).

exec without a terminal: `runc exec` with pipes; runc copies the process's stdio and exits with
its exit code (128 + signal when killed).

exec with a terminal: the agent opens a pty pair and runs `setsid -w -c runc exec -t ...` with the
slave as runc's stdio and controlling terminal. runc puts it in raw mode, allocates the container's
own pty and copies between the two, so the agent reads and writes the master; a resize is a
TIOCSWINSZ on the master, which the kernel turns into SIGWINCH for runc, which resizes the inner
pty. runc still waits for the process, so its exit code is the process's. (The other design,
`runc exec -d --console-socket` with the master received over SCM_RIGHTS, loses the exit code:
the detached process is reparented away from the agent.)

attach: conmon's attach socket (SOCK_SEQPACKET at `<bundle>/attach`; each packet from conmon is a
one-byte stream tag, 2 = stdout, 3 = stderr, then data; packets to it are stdin; shutting down our
write side closes the container's stdin unless it was started with stdinOnce false). Resize goes
through conmon's `ctl` fifo ("1 <height> <width>"). Every session's `close` ends only the session:
an exec'd process is killed (by its pid file), an attach just detaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import signal
import socket
import struct
import termios
import tty as tty_mod
from collections.abc import Awaitable, Callable
from pathlib import Path

from kubelite.agent.runtime.runc.container import write_ctl

ATTACH_PACKET = 32000  # conmon reads at most 32 KiB - 1 per packet
STDOUT_TAG, STDERR_TAG = 2, 3


def _kill_pid_file(path: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(path.read_text().strip()), signal.SIGKILL)


class PipeExecSession:
    def __init__(self, proc: asyncio.subprocess.Process, pid_file: Path) -> None:
        self.proc, self.pid_file = proc, pid_file
        self.stdout: asyncio.StreamReader | None = proc.stdout
        self.stderr: asyncio.StreamReader | None = proc.stderr

    async def write_stdin(self, data: bytes) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    async def resize(self, width: int, height: int) -> None:
        return None

    async def wait(self) -> int:
        code = await self.proc.wait()
        self.pid_file.unlink(missing_ok=True)
        return code

    async def close(self) -> None:
        if self.proc.returncode is None:
            _kill_pid_file(self.pid_file)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        self.pid_file.unlink(missing_ok=True)


class TtyExecSession:
    def __init__(self, proc: asyncio.subprocess.Process, master: int, pid_file: Path) -> None:
        self.proc, self.master, self.pid_file = proc, master, pid_file
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None
        self._loop = asyncio.get_running_loop()
        os.set_blocking(master, False)
        self._loop.add_reader(master, self._readable)
        self._closed = False

    def _readable(self) -> None:
        assert self.stdout is not None
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave fd closed, the process ended
            data = b""
        if data:
            self.stdout.feed_data(data)
        else:
            self._loop.remove_reader(self.master)
            self.stdout.feed_eof()

    async def write_stdin(self, data: bytes) -> None:
        while data and not self._closed:
            try:
                written = os.write(self.master, data)
            except BlockingIOError:
                await asyncio.sleep(0.01)
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return
                raise
            data = data[written:]

    async def close_stdin(self) -> None:
        await self.write_stdin(b"\x04")  # a terminal has no half-close: send EOF (^D)

    async def resize(self, width: int, height: int) -> None:
        if not self._closed:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        code = await self.proc.wait()
        self.pid_file.unlink(missing_ok=True)
        return code

    async def close(self) -> None:
        if self.proc.returncode is None:
            _kill_pid_file(self.pid_file)
            await self.proc.wait()
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self.master)
            os.close(self.master)
            if self.stdout is not None and not self.stdout.at_eof():
                self.stdout.feed_eof()
        self.pid_file.unlink(missing_ok=True)


async def start_exec(runc_argv: list[str], command: list[str], *, pid_file: Path, tty: bool,
                     stdin: bool) -> PipeExecSession | TtyExecSession:
    """`runc_argv`: runc with its --root, up to (not including) the subcommand."""
    if not tty:
        argv = [*runc_argv, "exec", "--pid-file", str(pid_file), *command]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return PipeExecSession(proc, pid_file)
    master, slave = os.openpty()
    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        tty_mod.setraw(slave)  # runc makes it raw too, but only once it runs: input before that would echo
        argv = ["setsid", "-w", "-c", *runc_argv, "exec", "-t", "--pid-file", str(pid_file), *command]
        proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave, stderr=slave)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return TtyExecSession(proc, master, pid_file)


class AttachSession:
    def __init__(self, sock: socket.socket, bundle: Path, *, tty: bool, wait_exit: Callable[[], Awaitable[int]]) -> None:
        self.sock, self.bundle, self._wait_exit = sock, bundle, wait_exit
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None if tty else asyncio.StreamReader()
        self._pump = asyncio.get_running_loop().create_task(self._receive())

    async def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                packet = await loop.sock_recv(self.sock, 65536)
                if not packet:
                    break
                target = self.stderr if packet[0] == STDERR_TAG and self.stderr is not None else self.stdout
                if target is not None:
                    target.feed_data(packet[1:])
        except OSError:
            pass
        finally:
            for reader in (self.stdout, self.stderr):
                if reader is not None and not reader.at_eof():
                    reader.feed_eof()

    async def write_stdin(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        for i in range(0, len(data), ATTACH_PACKET):
            with contextlib.suppress(OSError):
                await loop.sock_sendall(self.sock, data[i:i + ATTACH_PACKET])

    async def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    async def resize(self, width: int, height: int) -> None:
        write_ctl(self.bundle, f"1 {height} {width}\n")

    async def wait(self) -> int:
        return await self._wait_exit()

    async def close(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        self.sock.close()


async def open_attach(bundle: Path, *, tty: bool, wait_exit: Callable[[], Awaitable[int]]) -> AttachSession:
    """Connect to conmon's attach socket (through /proc/self/fd, so any bundle path length works)."""
    dir_fd = os.open(bundle, os.O_PATH | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{dir_fd}/attach")
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dir_fd)
    return AttachSession(sock, bundle, tty=tty, wait_exit=wait_exit)

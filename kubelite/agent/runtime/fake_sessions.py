"""The two StreamSessions of the hollow runtime (see `fake_streaming.py`).

`ProcessSession`: a host subprocess, in its own session (so closing kills its whole process
group), with pipes, or with a pty as its controlling terminal when a tty is asked for (stderr is
then merged into the terminal, as with any tty). Exit codes follow the shell's convention: a
process killed by signal N exits 128+N, as runc reports it.

`ConsoleSession`: an attach to a hollow container's console; output arrives through `deliver`,
stdin goes to the `echo` callback, and the session ends when stdin closes or the container stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import signal
import struct
import termios
from collections.abc import Callable
from pathlib import Path

EOT = b"\x04"  # what closing stdin means on a terminal (^D)


def _controlling_tty() -> None:  # runs in the child, after setsid
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class ProcessSession:
    def __init__(self, proc: asyncio.subprocess.Process, *, stdout: asyncio.StreamReader | None,
                 stderr: asyncio.StreamReader | None, stdin: asyncio.StreamWriter | None,
                 master: int | None = None) -> None:
        self.proc = proc
        self.stdout, self.stderr = stdout, stderr
        self._stdin = stdin
        self._master = master  # a pty master fd kept for resizes (tty sessions)

    async def write_stdin(self, data: bytes) -> None:
        if self._stdin is None or self._stdin.is_closing():
            return
        try:
            self._stdin.write(data)
            await self._stdin.drain()
        except (ConnectionError, OSError):
            self._stdin = None  # the process closed its stdin; drop further input

    async def close_stdin(self) -> None:
        if self._stdin is None:
            return
        if self._master is not None:
            await self.write_stdin(EOT)
            return
        with contextlib.suppress(ConnectionError, OSError):
            self._stdin.close()
        self._stdin = None

    async def resize(self, width: int, height: int) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        code = await self.proc.wait()
        return 128 - code if code < 0 else code

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.proc.wait(), 5)
        if self._stdin is not None:
            with contextlib.suppress(Exception):
                self._stdin.close()
        if self._master is not None:
            os.close(self._master)
            self._master = None


async def spawn_process(command: list[str], *, cwd: Path, env: dict[str, str], tty: bool,
                        stdin: bool) -> ProcessSession:
    """Start `command`; a command that cannot start behaves as runc's does: a message on stderr
    and exit code 126 (127 when the file does not exist)."""
    if not command:
        command = ["false"]
    try:
        if tty:
            return await _spawn_tty(command, cwd=cwd, env=env)
        return await _spawn_pipes(command, cwd=cwd, env=env, stdin=stdin)
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        message = f'exec failed: unable to start container process: exec: "{command[0]}": {exc.strerror}\n'
        to = "" if tty else " >&2"  # a terminal has no separate stderr
        return await _spawn_pipes(["sh", "-c", f'printf %s "$0"{to}; exit {code}', message], cwd=cwd,
                                  env=env, stdin=False)


async def _spawn_pipes(command: list[str], *, cwd: Path, env: dict[str, str], stdin: bool) -> ProcessSession:
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, env=env, stdin=pipe if stdin else asyncio.subprocess.DEVNULL, stdout=pipe,
        stderr=pipe, start_new_session=True)
    return ProcessSession(proc, stdout=proc.stdout, stderr=proc.stderr, stdin=proc.stdin)


async def _spawn_tty(command: list[str], *, cwd: Path, env: dict[str, str]) -> ProcessSession:
    master, slave = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            preexec_fn=_controlling_tty)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(master), "rb", 0))
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin,
                                                        os.fdopen(os.dup(master), "wb", 0))
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return ProcessSession(proc, stdout=reader, stderr=None, stdin=writer, master=master)


class ConsoleSession:
    def __init__(self, *, tty: bool, echo: Callable[[bytes], None],
                 detach: Callable[[ConsoleSession], None]) -> None:
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None if tty else asyncio.StreamReader()
        self._echo, self._detach = echo, detach
        self._done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def deliver(self, stream: str, data: bytes) -> None:
        target = self.stderr if stream == "stderr" and self.stderr is not None else self.stdout
        if target is not None and not self._done.done():
            target.feed_data(data)

    def end(self, code: int) -> None:
        if self._done.done():
            return
        self._detach(self)
        for reader in (self.stdout, self.stderr):
            if reader is not None:
                reader.feed_eof()
        self._done.set_result(code)

    async def write_stdin(self, data: bytes) -> None:
        if not self._done.done():
            self._echo(data)

    async def close_stdin(self) -> None:
        self.end(0)  # stdinOnce: the console's cat sees EOF and the attach is over

    async def resize(self, width: int, height: int) -> None:
        return None

    async def wait(self) -> int:
        return await self._done

    async def close(self) -> None:
        self.end(0)

"""Streaming for the hollow runtime (`FakeRuntime` mixes this in): logs, exec, attach and
port-forward that behave enough like a real node's for kubectl to be tested against them.

What a hollow container offers, since it has no process and no root filesystem:
- logs: a CRI-format file per container holding a few "started" lines stamped with the
  container's start time. Files are written lazily, when someone first asks for the log or
  writes to it (`write_log`), so thousands of hollow pods cost no files;
- exec: the command runs as a HOST subprocess (no namespaces, no rootfs), in a scratch directory
  of its own, with the container's literal env values, HOSTNAME = the pod name, and a pty when
  asked. It is a test double: anyone allowed to exec into a hollow pod runs commands as the agent;
- attach: the container's console behaves like `cat` with stdinOnce: what is written to its stdin
  comes back on its stdout (and lands in its log); closing stdin ends the attach; attachers also
  see whatever `write_log` adds;
- port-forward: every port of the pod reaches one echo server per pod on 127.0.0.1.

Scratch files live in one temporary directory per runtime, removed with the runtime object or
at exit; a pod's files, consoles and echo server go with its sandbox (`sandbox_removed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelite.agent.runtime.fake_sessions import ConsoleSession, spawn_process
from kubelite.agent.runtime.streaming import StreamSession
from kubelite.agent.server.crilog import encode_records

if TYPE_CHECKING:
    from kubelite.agent.runtime.interface import PodRuntimeStatus

Obj = dict[str, Any]


class ContainerNotRunning(Exception):
    """Exec or attach to a container that is not running (or unknown)."""


@dataclass
class _Container:
    pod_uid: str
    name: str
    spec: Obj
    image: str
    started_ns: int
    written: bool = False
    consoles: set[ConsoleSession] = field(default_factory=set)


@dataclass
class _State:
    node_name: str
    _root: Path | None = None
    containers: dict[tuple[str, str], _Container] = field(default_factory=dict)
    pod_names: dict[str, str] = field(default_factory=dict)  # uid -> pod name (hostname)
    echo: dict[str, asyncio.Server] = field(default_factory=dict)
    echo_writers: dict[str, set[asyncio.StreamWriter]] = field(default_factory=dict)

    def root(self) -> Path:
        """The scratch directory, made on first use (most hollow nodes never need one)."""
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix=f"kubelite-hollow-{self.node_name or 'node'}-"))
            weakref.finalize(self, shutil.rmtree, self._root, ignore_errors=True)
        return self._root

    def container_dir(self, record: _Container) -> Path:
        return self.root() / record.pod_uid / record.name

    def remove_pod_files(self, pod_uid: str) -> None:
        if self._root is not None:
            shutil.rmtree(self._root / pod_uid, ignore_errors=True)


class FakeStreaming:
    """The StreamingRuntime half of the hollow runtime. Expects `self.pods` (uid ->
    PodRuntimeStatus) and `self.node_name` from the class it is mixed into."""

    pods: dict[str, PodRuntimeStatus]
    node_name: str
    _fake_streaming: _State | None = None

    @property
    def _streams(self) -> _State:
        if self._fake_streaming is None:
            self._fake_streaming = _State(self.node_name)
        return self._fake_streaming

    # ----- hooks the runtime calls ---------------------------------------------------------------

    def sandbox_created(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        self._streams.pod_names[str(meta.get("uid"))] = str(meta.get("name") or "")

    def container_started(self, pod_uid: str, container: Obj, image: str) -> None:
        name = str(container["name"])
        self._streams.containers[(pod_uid, name)] = _Container(pod_uid, name, container, image, time.time_ns())

    def container_stopped(self, pod_uid: str, name: str, exit_code: int) -> None:
        record = self._streams.containers.get((pod_uid, name))
        for console in list(record.consoles if record else ()):
            console.end(exit_code)

    async def sandbox_removed(self, pod_uid: str) -> None:
        state = self._streams
        for key in [k for k in state.containers if k[0] == pod_uid]:
            for console in list(state.containers[key].consoles):
                console.end(137)
            del state.containers[key]
        state.pod_names.pop(pod_uid, None)
        await self._stop_echo(pod_uid)
        state.remove_pod_files(pod_uid)

    # ----- logs ----------------------------------------------------------------------------------

    def log_path(self, pod_uid: str, container: str, *, previous: bool = False) -> Path | None:
        record = self._streams.containers.get((pod_uid, container))
        if record is None or previous:
            return None  # hollow containers never restart, so there is no previous instance
        return self._materialize(record)

    def write_log(self, pod_uid: str, container: str, data: bytes, *, stream: str = "stdout") -> None:
        """Append what the container "printed" to its log and show it to its attachers."""
        record = self._streams.containers.get((pod_uid, container))
        if record is None:
            raise KeyError(f"no container {container} in pod {pod_uid}")
        with self._materialize(record).open("ab") as f:
            f.write(encode_records(time.time_ns(), stream, data))
        for console in list(record.consoles):
            console.deliver(stream, data)

    def _materialize(self, record: _Container) -> Path:
        """The container's log file, written with its "started" lines on first use."""
        path = self._streams.container_dir(record) / "0.log"
        if record.written:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = (f'hollow container "{record.name}" started\n'
                 f"image {record.image}\n"
                 "no process runs here: exec runs on the agent's host, ports echo\n")
        path.write_bytes(encode_records(record.started_ns, "stdout", lines.encode()))
        record.written = True
        return path

    # ----- exec / attach -------------------------------------------------------------------------

    def _running(self, pod_uid: str, container: str) -> _Container:
        status = self.pods.get(pod_uid)
        state = status.containers.get(container) if status else None
        record = self._streams.containers.get((pod_uid, container))
        if state is None or record is None or state.state != "running":
            raise ContainerNotRunning(f"container {container} is not running")
        return record

    async def exec(self, pod_uid: str, container: str, command: list[str], *, tty: bool,
                   stdin: bool) -> StreamSession:
        record = self._running(pod_uid, container)
        workdir = self._streams.container_dir(record) / "fs"
        workdir.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
               "HOSTNAME": self._streams.pod_names.get(pod_uid, "")}
        env.update({str(e["name"]): str(e["value"]) for e in record.spec.get("env") or []
                    if isinstance(e, dict) and "value" in e})
        if tty:
            env.setdefault("TERM", "xterm")
        return await spawn_process(command, cwd=workdir, env=env, tty=tty, stdin=stdin)

    async def attach(self, pod_uid: str, container: str, *, tty: bool, stdin: bool) -> StreamSession:
        record = self._running(pod_uid, container)
        console = ConsoleSession(tty=tty, echo=lambda data: self.write_log(pod_uid, container, data),
                                 detach=lambda s: record.consoles.discard(s))
        record.consoles.add(console)
        return console

    # ----- port-forward --------------------------------------------------------------------------

    async def port_forward(self, pod_uid: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if pod_uid not in self.pods:
            raise ContainerNotRunning(f"pod {pod_uid} has no sandbox")
        state = self._streams
        server = state.echo.get(pod_uid)
        if server is None:
            writers: set[asyncio.StreamWriter] = state.echo_writers.setdefault(pod_uid, set())
            server = state.echo[pod_uid] = await asyncio.start_server(
                lambda r, w: _echo(r, w, writers), "127.0.0.1", 0)
        echo_port = server.sockets[0].getsockname()[1]
        return await asyncio.open_connection("127.0.0.1", echo_port)

    async def _stop_echo(self, pod_uid: str) -> None:
        server = self._streams.echo.pop(pod_uid, None)
        if server is None:
            return
        server.close()
        for writer in self._streams.echo_writers.pop(pod_uid, set()):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                writers: set[asyncio.StreamWriter]) -> None:
    writers.add(writer)
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        writers.discard(writer)
        writer.close()

"""What the kubelet's streaming server needs from a runtime: container logs, exec, attach and
port-forward (the CRI's streaming calls). The agent's HTTPS server speaks kubectl's protocols
(WebSocket v5.channel.k8s.io, SPDY/3.1 for port-forward) and drives these; the runtime only moves
bytes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol


class StreamSession(Protocol):
    """A running exec or attach: stdio as asyncio streams, a terminal that can be resized."""

    stdout: asyncio.StreamReader | None  # with a tty: the terminal's output (stderr is merged into it)
    stderr: asyncio.StreamReader | None  # None with a tty

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int:
        """The exit code (attach: the container's, when it exits)."""
        ...

    async def close(self) -> None:
        """End the session (client went away): kill an exec'd process, detach from an attach."""
        ...


class StreamingRuntime(Protocol):
    def log_path(self, pod_uid: str, container: str, *, previous: bool = False) -> Path | None:
        """The CRI-format log file of the container's current (or previous) instance."""
        ...

    async def exec(self, pod_uid: str, container: str, command: list[str], *, tty: bool,
                   stdin: bool) -> StreamSession: ...

    async def attach(self, pod_uid: str, container: str, *, tty: bool, stdin: bool) -> StreamSession: ...

    async def port_forward(self, pod_uid: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to `port` inside the pod's network namespace."""
        ...

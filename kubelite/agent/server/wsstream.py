"""The channel protocol kubectl speaks over WebSocket for exec and attach (`v5.channel.k8s.io`,
and its predecessor `v4.channel.k8s.io`, which lacks the close signal).

Every WebSocket message is binary: byte 0 names the channel, the rest is its payload.

    0 stdin   client -> server          3 error   server -> client, a JSON metav1.Status
    1 stdout  server -> client          4 resize  client -> server, {"Width": W, "Height": H}
    2 stderr  server -> client        255 close   (v5) payload = the one channel being closed

A session ends with exactly one Status on channel 3 (Success, or Failure with reason
NonZeroExitCode and the exit code as the cause's message), then a normal WebSocket close. This
module is pure: it turns messages into `Inbound` events and statuses into messages; the session
driver (`remotecommand.py`) does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)  # preference order

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255

NON_ZERO_EXIT = "NonZeroExitCode"
EXIT_CODE_CAUSE = "ExitCode"


class ProtocolError(ValueError):
    """A message that does not follow the channel protocol."""


@dataclass(frozen=True)
class Stdin:
    data: bytes


@dataclass(frozen=True)
class StdinClosed:
    """The client has no more input (v5 close signal for channel 0)."""


@dataclass(frozen=True)
class Resize:
    width: int
    height: int


@dataclass(frozen=True)
class Ignored:
    """A message for a channel the server does not read (clients may close output channels)."""

    channel: int


Inbound = Stdin | StdinClosed | Resize | Ignored


def negotiate(offered: Iterable[str]) -> str | None:
    """The protocol to answer with: the best of ours among the client's offers (None: no match)."""
    wanted = {p.strip() for p in offered if p.strip()}
    return next((p for p in PROTOCOLS if p in wanted), None)


def offered_protocols(header: str | None) -> list[str]:
    """`Sec-WebSocket-Protocol: a, b` -> ["a", "b"]."""
    return [p.strip() for p in (header or "").split(",") if p.strip()]


def frame(channel: int, data: bytes = b"") -> bytes:
    return bytes((channel,)) + data


def close_signal(channel: int) -> bytes:
    return bytes((CLOSE, channel))


def parse(message: bytes, *, protocol: str = V5) -> Inbound:
    """One client message as an event; raises ProtocolError for an empty or malformed one."""
    if not message:
        raise ProtocolError("empty message: no channel byte")
    channel, payload = message[0], message[1:]
    if channel == STDIN:
        return Stdin(bytes(payload))
    if channel == RESIZE:
        width, height = parse_resize(payload)
        return Resize(width, height)
    if channel == CLOSE and protocol == V5:
        if len(payload) != 1:
            raise ProtocolError(f"close signal with {len(payload)} payload bytes, want 1")
        return StdinClosed() if payload[0] == STDIN else Ignored(payload[0])
    return Ignored(channel)


def parse_resize(payload: bytes) -> tuple[int, int]:
    try:
        size = json.loads(payload)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"bad resize message {payload[:100]!r}") from exc
    if not (0 <= width <= 0xFFFF and 0 <= height <= 0xFFFF):
        raise ProtocolError(f"terminal size {width}x{height} out of range")
    return width, height


def resize_message(width: int, height: int) -> bytes:
    return frame(RESIZE, json.dumps({"Width": width, "Height": height}).encode())


# ----- statuses (channel 3) ----------------------------------------------------------------------

def success() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_failure(code: int, command: list[str]) -> dict[str, Any]:
    """The Status of a command that exited non-zero; kubectl exits with `code`."""
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"{_argv(command)}, exit code {code}",
            "reason": NON_ZERO_EXIT,
            "details": {"causes": [{"reason": EXIT_CODE_CAUSE, "message": str(code)}]}}


def failure(message: str, *, reason: str = "InternalError", code: int = 500) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


def status_message(status: dict[str, Any]) -> bytes:
    return frame(ERROR, json.dumps(status, separators=(",", ":")).encode())


def exit_code_of(status: dict[str, Any]) -> int:
    """What a client makes of a Status: 0 for Success, the cause's code for NonZeroExitCode, else 1."""
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == NON_ZERO_EXIT:
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == EXIT_CODE_CAUSE:
                try:
                    return int(cause.get("message"))
                except (TypeError, ValueError):
                    break
    return 1


def _argv(command: list[str]) -> str:
    return "[" + " ".join(command) + "]"

"""The v5 channel protocol (exec/attach) and the session bridge that drives it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import WSMsgType
from multidict import MultiDict

from kubelite.agent.server import wsstream
from kubelite.agent.server.remotecommand import Bridge, StreamOptions, stream_options
from kubelite.objects.errors import BadRequest

# ----- the protocol --------------------------------------------------------------------------------


def test_negotiation_prefers_v5() -> None:
    assert wsstream.negotiate(["v4.channel.k8s.io", "v5.channel.k8s.io"]) == wsstream.V5
    assert wsstream.negotiate(wsstream.offered_protocols("v4.channel.k8s.io, base64.channel.k8s.io")) == wsstream.V4
    assert wsstream.negotiate(["channel.k8s.io"]) is None
    assert wsstream.offered_protocols(None) == []


def test_client_messages() -> None:
    assert wsstream.parse(b"\x00hello") == wsstream.Stdin(b"hello")
    assert wsstream.parse(b"\x00") == wsstream.Stdin(b"")
    assert wsstream.parse(wsstream.resize_message(120, 40)) == wsstream.Resize(120, 40)
    assert wsstream.parse(b'\x04{"Width":80,"Height":24}') == wsstream.Resize(80, 24)
    assert wsstream.parse(b"\xff\x00") == wsstream.StdinClosed()
    assert wsstream.parse(b"\xff\x01") == wsstream.Ignored(1)
    assert wsstream.parse(b"\xff\x00", protocol=wsstream.V4) == wsstream.Ignored(255)  # v4 has no close signal
    assert wsstream.parse(b"\x01output") == wsstream.Ignored(1)


@pytest.mark.parametrize("message", [b"", b"\x04not json", b'\x04{"Width":80}', b'\x04{"Width":-1,"Height":2}',
                                     b"\xff", b"\xff\x00\x01"])
def test_bad_client_messages(message: bytes) -> None:
    with pytest.raises(wsstream.ProtocolError):
        wsstream.parse(message)


def test_server_frames() -> None:
    assert wsstream.frame(wsstream.STDOUT, b"out") == b"\x01out"
    assert wsstream.close_signal(wsstream.STDIN) == b"\xff\x00"
    message = wsstream.status_message(wsstream.success())
    assert message[0] == wsstream.ERROR and json.loads(message[1:]) == {"metadata": {}, "status": "Success"}


def test_exit_status_carries_the_code_as_kubectl_reads_it() -> None:
    status = wsstream.exit_failure(3, ["sh", "-c", "exit 3"])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]}
    assert status["message"].startswith("command terminated with non-zero exit code")
    assert wsstream.exit_code_of(status) == 3
    assert wsstream.exit_code_of(wsstream.success()) == 0
    assert wsstream.exit_code_of(wsstream.failure("boom")) == 1


def test_stream_options_accept_kubelet_and_api_forms() -> None:
    kubelet = stream_options(MultiDict([("command", "sh"), ("command", "-c"), ("command", "x"), ("input", "1"),
                                        ("output", "1"), ("error", "1")]), exec_=True)
    assert kubelet == StreamOptions(True, True, True, False, ("sh", "-c", "x"))
    api = stream_options(MultiDict([("command", "ls"), ("stdout", "true"), ("stderr", "true"), ("tty", "true")]),
                         exec_=True)
    assert (api.stdout, api.stderr, api.tty) == (True, False, True)  # a tty has no separate stderr
    with pytest.raises(BadRequest, match="at least 1 of stdin, stdout, stderr"):
        stream_options(MultiDict([("command", "ls")]), exec_=True)
    with pytest.raises(BadRequest, match="at least one command"):
        stream_options(MultiDict([("output", "1")]), exec_=True)
    assert stream_options(MultiDict([("output", "1")]), exec_=False).command == ()


# ----- the bridge ----------------------------------------------------------------------------------

class Message:
    def __init__(self, data: bytes) -> None:
        self.type, self.data = WSMsgType.BINARY, data


class FakeWebSocket:
    """What Bridge uses of aiohttp's WebSocketResponse: iteration, send_bytes, close."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.sent: list[bytes] = []
        self.closed = False

    def __aiter__(self) -> FakeWebSocket:
        return self

    async def __anext__(self) -> Message:
        data = await self.incoming.get()
        if data is None or self.closed:
            raise StopAsyncIteration
        return Message(data)

    async def send_bytes(self, data: bytes) -> None:
        assert not self.closed
        self.sent.append(data)

    async def close(self) -> None:
        self.closed = True
        self.incoming.put_nowait(None)

    def on(self, channel: int) -> bytes:
        return b"".join(m[1:] for m in self.sent if m[0] == channel)


class FakeSession:
    def __init__(self, *, code: int = 0) -> None:
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = asyncio.StreamReader()
        self.code = code
        self.stdin: list[bytes] = []
        self.events: list[Any] = []
        self.exited = asyncio.Event()

    async def write_stdin(self, data: bytes) -> None:
        self.stdin.append(data)

    async def close_stdin(self) -> None:
        self.events.append("stdin closed")
        self.finish()

    async def resize(self, width: int, height: int) -> None:
        self.events.append((width, height))

    def finish(self) -> None:
        for reader in (self.stdout, self.stderr):
            assert reader is not None
            reader.feed_eof()
        self.exited.set()

    async def wait(self) -> int:
        await self.exited.wait()
        return self.code

    async def close(self) -> None:
        self.events.append("closed")


def _bridge(ws: FakeWebSocket, session: FakeSession, *, tty: bool = False, attach: bool = False) -> Bridge:
    options = StreamOptions(stdin=True, stdout=True, stderr=not tty, tty=tty, command=("sh", "-c", "x"))
    return Bridge(ws, session, options, protocol=wsstream.V5, attach=attach)  # type: ignore[arg-type]


async def test_outputs_then_exit_status() -> None:
    ws, session = FakeWebSocket(), FakeSession(code=3)
    task = asyncio.create_task(_bridge(ws, session).run())
    assert session.stdout is not None and session.stderr is not None
    session.stdout.feed_data(b"hi\n")
    session.stderr.feed_data(b"oops\n")
    ws.incoming.put_nowait(b"\x00typed")
    ws.incoming.put_nowait(wsstream.close_signal(wsstream.STDIN))
    await asyncio.wait_for(task, 2)
    assert (ws.on(1), ws.on(2), session.stdin) == (b"hi\n", b"oops\n", [b"typed"])
    assert wsstream.exit_code_of(json.loads(ws.on(3))) == 3
    assert ws.sent[-1][0] == wsstream.ERROR and ws.closed  # the status is the last message
    assert session.events == ["stdin closed", "closed"]


async def test_resize_only_with_a_tty() -> None:
    for tty, expected in ((True, [(100, 30)]), (False, [])):
        ws, session = FakeWebSocket(), FakeSession()
        task = asyncio.create_task(_bridge(ws, session, tty=tty).run())
        ws.incoming.put_nowait(wsstream.resize_message(100, 30))
        ws.incoming.put_nowait(b"\x04garbage")  # ignored, the session goes on
        ws.incoming.put_nowait(wsstream.close_signal(wsstream.STDIN))
        await asyncio.wait_for(task, 2)
        assert session.events[:-2] == expected
        assert json.loads(ws.on(3)) == wsstream.success()


async def test_client_leaving_closes_the_session_without_a_status() -> None:
    ws, session = FakeWebSocket(), FakeSession()
    task = asyncio.create_task(_bridge(ws, session).run())
    await asyncio.sleep(0.01)
    ws.incoming.put_nowait(None)  # the client went away
    await asyncio.wait_for(task, 2)
    assert session.events == ["closed"] and ws.on(3) == b""


async def test_attach_reports_success_whatever_the_exit_code() -> None:
    ws, session = FakeWebSocket(), FakeSession(code=137)
    task = asyncio.create_task(_bridge(ws, session, attach=True).run())
    session.finish()
    await asyncio.wait_for(task, 2)
    assert json.loads(ws.on(3)) == wsstream.success()

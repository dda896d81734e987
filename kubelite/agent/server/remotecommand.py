"""exec and attach over WebSocket: `/exec/<ns>/<pod>[/<uid>]/<container>?command=...` and
`/attach/<ns>/<pod>[/<uid>]/<container>`, speaking the channel protocol of `wsstream`.

A session runs three kinds of tasks: one pump per output stream (stdout -> channel 1, stderr ->
channel 2), and one reader of client messages (stdin, its close signal, terminal resizes). When
the outputs reach EOF the exit code is collected and sent as the Status on channel 3, then the
WebSocket closes normally; kubectl exits with that code. If the client goes first, the session
is closed (an exec'd process is killed, an attach detaches).

Stream flags arrive in the kubelet's form (`input=1&output=1&error=1&tty=1`, what the API server
sends) or the API's (`stdin=true&stdout=true&stderr=true&tty=true`). With a tty there is no
separate stderr, as upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web
from multidict import MultiMapping

from kubelite.agent.runtime.streaming import StreamSession
from kubelite.agent.server import wsstream
from kubelite.agent.server.targets import PodSource, check_container, check_running, find_pod
from kubelite.objects.errors import BadRequest

log = logging.getLogger(__name__)
CHUNK = 32 * 1024


@dataclass(frozen=True)
class StreamOptions:
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    command: tuple[str, ...] = ()


def _flag(query: MultiMapping[str], kubelet_name: str, api_name: str) -> bool:
    return query.get(kubelet_name, "") == "1" or query.get(api_name, "").lower() in ("true", "1")


def stream_options(query: MultiMapping[str], *, exec_: bool) -> StreamOptions:
    tty = _flag(query, "tty", "tty")
    options = StreamOptions(stdin=_flag(query, "input", "stdin"), stdout=_flag(query, "output", "stdout"),
                            stderr=_flag(query, "error", "stderr") and not tty, tty=tty,
                            command=tuple(query.getall("command", [])))
    if not (options.stdin or options.stdout or options.stderr):
        raise BadRequest("you must specify at least 1 of stdin, stdout, stderr")
    if exec_ and not options.command:
        raise BadRequest("you must specify at least one command for the container")
    return options


def upgrade_protocol(request: web.Request, supported: tuple[str, ...]) -> str:
    """The WebSocket subprotocol to accept; 400 for a request that is not a WebSocket upgrade."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise BadRequest("Upgrade request required")
    offered = wsstream.offered_protocols(request.headers.get("Sec-WebSocket-Protocol"))
    chosen = next((p for p in supported if p in offered), None)
    if chosen is None:
        raise BadRequest(f"none of the offered WebSocket subprotocols {offered} is supported; "
                         f"use one of {list(supported)}")
    return chosen


async def serve_remote_command(request: web.Request, source: PodSource, *, attach: bool) -> web.StreamResponse:
    info = request.match_info
    target = find_pod(source, info["namespace"], info["pod"], info.get("uid"))
    container = check_container(target, info["container"])
    options = stream_options(request.query, exec_=not attach)
    check_running(target, container)
    protocol = upgrade_protocol(request, wsstream.PROTOCOLS)
    ws = web.WebSocketResponse(protocols=(protocol,), max_msg_size=0)
    await ws.prepare(request)
    try:
        if attach:
            session = await target.runtime.attach(target.uid, container, tty=options.tty, stdin=options.stdin)
        else:
            session = await target.runtime.exec(target.uid, container, list(options.command), tty=options.tty,
                                                stdin=options.stdin)
    except Exception as exc:
        verb = "attach to" if attach else "exec in"
        await _finish(ws, wsstream.failure(f"unable to {verb} container {container}: {exc}"))
        return ws
    await Bridge(ws, session, options, protocol=protocol, attach=attach).run()
    return ws


async def _finish(ws: web.WebSocketResponse, status: dict[str, object]) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_bytes(wsstream.status_message(status))
        await ws.close()


class Bridge:
    """Moves bytes between one WebSocket and one StreamSession until either ends."""

    def __init__(self, ws: web.WebSocketResponse, session: StreamSession, options: StreamOptions, *,
                 protocol: str, attach: bool) -> None:
        self.ws, self.session, self.options = ws, session, options
        self.protocol, self.attach = protocol, attach

    async def run(self) -> None:
        pumps = [asyncio.create_task(self._pump(self.session.stdout, wsstream.STDOUT if self.options.stdout else None)),
                 asyncio.create_task(self._pump(self.session.stderr, wsstream.STDERR if self.options.stderr else None))]
        outputs: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*pumps))
        reader: asyncio.Future[Any] = asyncio.create_task(self._read_client())
        try:
            await asyncio.wait([outputs, reader], return_when=asyncio.FIRST_COMPLETED)
            if outputs.done():
                await _finish(self.ws, await self._status())
        finally:
            for task in (reader, outputs, *pumps):
                task.cancel()
            await asyncio.gather(reader, outputs, *pumps, return_exceptions=True)
            await self.session.close()

    async def _status(self) -> dict[str, object]:
        code = await self.session.wait()
        if self.attach or code == 0:
            return wsstream.success()
        return wsstream.exit_failure(code, list(self.options.command))

    async def _pump(self, reader: asyncio.StreamReader | None, channel: int | None) -> None:
        """Copy one output stream to its channel (or drop it, when the client did not ask for it)."""
        if reader is None:
            return
        while True:
            try:
                data = await reader.read(CHUNK)
            except OSError:  # a pty reports EIO once the process and its children are gone
                return
            if not data:
                return
            if channel is not None:
                await self.ws.send_bytes(wsstream.frame(channel, data))

    async def _read_client(self) -> None:
        """Client messages until the client closes (which ends the session)."""
        async for message in self.ws:
            if message.type != WSMsgType.BINARY:
                continue
            try:
                event = wsstream.parse(message.data, protocol=self.protocol)
            except wsstream.ProtocolError as exc:
                log.debug("exec/attach: ignoring bad client message: %s", exc)
                continue
            if isinstance(event, wsstream.Stdin) and self.options.stdin:
                await self.session.write_stdin(event.data)
            elif isinstance(event, wsstream.StdinClosed):
                await self.session.close_stdin()
            elif isinstance(event, wsstream.Resize) and self.options.tty:
                await self.session.resize(event.width, event.height)

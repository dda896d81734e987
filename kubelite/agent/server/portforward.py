"""Port-forward over SPDY/3.1 (tunnelled in WebSocket messages, subprotocol
`SPDY/3.1+portforward.k8s.io`): `/portForward/<ns>/<pod>[/<uid>]`.

For each local connection kubectl opens two SPDY streams with the same `requestid` header: an
error stream (which it half-closes at once) and a data stream, both naming the pod `port`. Every
SYN_STREAM gets its SYN_REPLY at once. When both streams of a pair are there, the pair connects to
the port through the runtime; client DATA goes to the connection (FIN -> half-close), the pod's
bytes come back as DATA on the data stream. When the pod side ends, both streams get an empty DATA
frame with FIN (kubectl waits for the error stream to close). A failure to connect is written on
the error stream, which makes kubectl report it. RST_STREAM from the client drops the pair; PINGs
are echoed; GOAWAY or the WebSocket closing ends everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from kubelite.agent.server import spdy
from kubelite.agent.server.remotecommand import upgrade_protocol
from kubelite.agent.server.targets import PodSource, find_pod

log = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CHUNK = 256 * 1024
Connect = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
Send = Callable[[list[spdy.Frame]], Awaitable[None]]


@dataclass
class _Pair:
    request_id: str
    port: int = 0
    data_id: int = 0
    error_id: int = 0
    writer: asyncio.StreamWriter | None = None
    backlog: list[bytes | None] = field(default_factory=list)  # client bytes before connecting; None = FIN
    task: asyncio.Task[None] | None = None


class PortForwarder:
    """One SPDY connection's worth of forwarded ports. `feed` it the client's bytes; it sends
    frames back through `send` and reaches ports through `connect`."""

    def __init__(self, send: Send, connect: Connect, *, pod: str) -> None:
        self.codec = spdy.Codec()
        self._send, self._connect, self.pod = send, connect, pod
        self._pairs: dict[str, _Pair] = {}
        self._by_stream: dict[int, _Pair] = {}
        self.closed = False

    async def feed(self, data: bytes) -> None:
        for frame in self.codec.feed(data):
            await self._handle(frame)

    async def _handle(self, frame: spdy.Frame) -> None:
        if isinstance(frame, spdy.SynStream):
            await self._syn_stream(frame)
        elif isinstance(frame, spdy.Data):
            await self._data(frame)
        elif isinstance(frame, spdy.RstStream):
            pair = self._by_stream.get(frame.stream_id)
            if pair is not None:
                self._drop(pair)
        elif isinstance(frame, spdy.Ping):
            await self._send([frame])
        elif isinstance(frame, spdy.GoAway):
            await self.close()

    async def _syn_stream(self, frame: spdy.SynStream) -> None:
        await self._send([spdy.SynReply(frame.stream_id)])
        headers = frame.headers
        pair = self._pairs.setdefault(headers.get("requestid", ""), _Pair(headers.get("requestid", "")))
        self._by_stream[frame.stream_id] = pair
        try:
            pair.port = int(headers.get("port", ""))
        except ValueError:
            pair.port = -1
        if headers.get("streamtype") == "error":
            pair.error_id = frame.stream_id
        elif headers.get("streamtype") == "data":
            pair.data_id = frame.stream_id
        else:
            await self._send([spdy.RstStream(frame.stream_id, spdy.PROTOCOL_ERROR)])
            return
        if pair.data_id and pair.error_id and pair.task is None:
            pair.task = asyncio.create_task(self._forward(pair), name=f"portforward:{self.pod}:{pair.port}")

    async def _data(self, frame: spdy.Data) -> None:
        pair = self._by_stream.get(frame.stream_id)
        if pair is None or frame.stream_id != pair.data_id:
            return  # the error stream carries nothing from the client but its FIN
        if pair.writer is None:
            pair.backlog += [frame.data] + ([None] if frame.fin else [])
            return
        await _write(pair.writer, frame.data, fin=frame.fin)

    async def _forward(self, pair: _Pair) -> None:
        try:
            if not 0 < pair.port < 65536:
                raise ValueError(f"invalid port {pair.port}")
            reader, writer = await self._connect(pair.port)
        except Exception as exc:
            await self._end(pair, error=f"error forwarding port {pair.port} to pod {self.pod}: {exc}")
            return
        try:
            while pair.backlog:  # frames arriving meanwhile join the backlog, so order holds
                chunk = pair.backlog.pop(0)
                await _write(writer, chunk or b"", fin=chunk is None)
            pair.writer = writer
            while data := await reader.read(CHUNK):
                await self._send([spdy.Data(pair.data_id, data)])
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
        await self._end(pair)

    async def _end(self, pair: _Pair, *, error: str = "") -> None:
        frames: list[spdy.Frame] = [spdy.Data(pair.data_id, b"", spdy.FLAG_FIN)]
        if error:
            frames.append(spdy.Data(pair.error_id, error.encode()))
        frames.append(spdy.Data(pair.error_id, b"", spdy.FLAG_FIN))
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._send(frames)
        self._forget(pair)

    def _drop(self, pair: _Pair) -> None:
        if pair.task is not None and pair.task is not asyncio.current_task():
            pair.task.cancel()
        self._forget(pair)

    def _forget(self, pair: _Pair) -> None:
        if pair.writer is not None:
            pair.writer.close()
        self._pairs.pop(pair.request_id, None)
        for stream_id in (pair.data_id, pair.error_id):
            self._by_stream.pop(stream_id, None)

    async def close(self) -> None:
        self.closed = True
        pairs = list(self._pairs.values())
        for pair in pairs:
            self._drop(pair)
        await asyncio.gather(*(p.task for p in pairs if p.task is not None), return_exceptions=True)


async def _write(writer: asyncio.StreamWriter, data: bytes, *, fin: bool) -> None:
    try:
        if data:
            writer.write(data)
            await writer.drain()
        if fin and writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def serve_port_forward(request: web.Request, source: PodSource) -> web.StreamResponse:
    info = request.match_info
    target = find_pod(source, info["namespace"], info["pod"], info.get("uid"))
    upgrade_protocol(request, (PROTOCOL,))
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), max_msg_size=0)
    await ws.prepare(request)
    lock = asyncio.Lock()

    async def send(frames: list[spdy.Frame]) -> None:
        async with lock:  # header blocks share one zlib stream: encode and send in one order
            await ws.send_bytes(b"".join(forwarder.codec.encode(f) for f in frames))

    async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await target.runtime.port_forward(target.uid, port)

    forwarder = PortForwarder(send, connect, pod=f"{target.name}_{info['namespace']}")
    try:
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                await forwarder.feed(message.data)
    except spdy.SpdyError as exc:
        log.info("port-forward to %s: %s", target.name, exc)
    finally:
        await forwarder.close()
        await ws.close()
    return ws

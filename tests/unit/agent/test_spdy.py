"""SPDY/3.1 framing (round trips, header blocks with the dictionary, frames split across
WebSocket messages) and the port-forward session built on it."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest

from kubelite.agent.server import spdy
from kubelite.agent.server.portforward import PortForwarder

HEADERS = {"streamtype": "data", "port": "8080", "requestid": "0"}


def test_dictionary_is_the_spdy3_one() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2  # the id zlib puts in every SPDY/3 header stream


def test_header_block_round_trip() -> None:
    raw = spdy.encode_header_block({"StreamType": "error", "port": "80", "x": "a\x00b"})
    assert raw[:4] == b"\x00\x00\x00\x03" and b"streamtype" in raw  # names go lower-case
    assert spdy.decode_header_block(raw) == {"streamtype": "error", "port": "80", "x": "a\x00b"}
    with pytest.raises(spdy.SpdyError):
        spdy.decode_header_block(raw[:-1])
    with pytest.raises(spdy.SpdyError):
        spdy.decode_header_block(raw + b"\x00")


FRAMES: list[spdy.Frame] = [
    spdy.SynStream(1, HEADERS, spdy.FLAG_FIN, 0, 3),
    spdy.SynReply(1, {}),
    spdy.HeadersFrame(3, {"a": "b"}),
    spdy.RstStream(3, spdy.CANCEL),
    spdy.Settings(((0, 4, 100), (1, 7, 65536))),
    spdy.Ping(7),
    spdy.GoAway(5, 0),
    spdy.WindowUpdate(1, 4096),
    spdy.Data(1, b"payload", 0),
    spdy.Data(3, b"", spdy.FLAG_FIN),
    spdy.Unknown(10, 0, b"\x00\x01"),
]


def test_every_frame_round_trips() -> None:
    client, server = spdy.Codec(), spdy.Codec()
    wire = b"".join(client.encode(f) for f in FRAMES)
    assert server.feed(wire) == FRAMES


def test_frames_split_across_messages_at_every_boundary() -> None:
    client = spdy.Codec()
    wire = b"".join(client.encode(f) for f in FRAMES)
    for size in (1, 2, 3, 7, 8, 9, 100):
        server = spdy.Codec()
        parsed = []
        for i in range(0, len(wire), size):
            parsed += server.feed(wire[i:i + size])
        assert parsed == FRAMES, size


def test_header_compression_is_one_stream_per_direction() -> None:
    client = spdy.Codec()
    first = client.encode(spdy.SynStream(1, HEADERS))
    second = client.encode(spdy.SynStream(3, {**HEADERS, "requestid": "1"}))
    assert len(second) < len(first)  # the second block refers back to the first
    assert spdy.Codec().feed(first + second)[1] == spdy.SynStream(3, {**HEADERS, "requestid": "1"})
    with pytest.raises(spdy.SpdyError):
        spdy.Codec().feed(second)  # a fresh context cannot inflate a later block


def test_wire_layout() -> None:
    codec = spdy.Codec()
    assert codec.encode(spdy.Ping(1)) == b"\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01"
    assert codec.encode(spdy.Data(5, b"ab", spdy.FLAG_FIN)) == b"\x00\x00\x00\x05\x01\x00\x00\x02ab"
    syn = codec.encode(spdy.SynStream(1, HEADERS))
    assert syn[:4] == b"\x80\x03\x00\x01" and struct.unpack(">I", syn[8:12])[0] == 1
    assert zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(syn[18:]).startswith(b"\x00\x00\x00\x03")


def test_protocol_errors() -> None:
    with pytest.raises(spdy.SpdyError, match="version 2"):
        spdy.Codec().feed(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")
    with pytest.raises(spdy.SpdyError):
        spdy.Codec().feed(b"\x80\x03\x00\x01\x00\x00\x00\x0e" + b"\x00" * 10 + b"junk")


# ----- port-forward sessions -----------------------------------------------------------------------

class Client:
    """The kubectl side: opens stream pairs and collects what the forwarder sends back."""

    def __init__(self) -> None:
        self.codec, self.peer = spdy.Codec(), spdy.Codec()
        self.frames: list[spdy.Frame] = []
        self.changed = asyncio.Event()

    async def receive(self, frames: list[spdy.Frame]) -> None:
        wire = b"".join(self.peer.encode(f) for f in frames)  # through real bytes, as over the WebSocket
        self.frames += self.codec.feed(wire)
        self.changed.set()

    def open_pair(self, request_id: int, port: int) -> bytes:
        error_id, data_id = 4 * request_id + 1, 4 * request_id + 3
        base = {"port": str(port), "requestid": str(request_id)}
        return b"".join([
            self.codec.encode(spdy.SynStream(error_id, {**base, "streamtype": "error"})),
            self.codec.encode(spdy.Data(error_id, b"", spdy.FLAG_FIN)),
            self.codec.encode(spdy.SynStream(data_id, {**base, "streamtype": "data"})),
        ])

    def data_on(self, stream_id: int) -> bytes:
        return b"".join(f.data for f in self.frames if isinstance(f, spdy.Data) and f.stream_id == stream_id)

    def fin_on(self, stream_id: int) -> bool:
        return any(isinstance(f, spdy.Data) and f.stream_id == stream_id and f.fin for f in self.frames)

    async def until(self, check: object) -> None:
        async with asyncio.timeout(2):
            while not check():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def echo_port() -> object:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_forward_a_connection(echo_port: int) -> None:
    client = Client()
    ports: list[int] = []

    async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        ports.append(port)
        return await asyncio.open_connection("127.0.0.1", echo_port)

    forwarder = PortForwarder(client.receive, connect, pod="web_default")
    wire = client.open_pair(0, 8080) + client.codec.encode(spdy.Data(3, b"early bytes "))
    for i in range(0, len(wire), 5):  # arbitrary message boundaries
        await forwarder.feed(wire[i:i + 5])
    await forwarder.feed(client.codec.encode(spdy.Data(3, b"then more", spdy.FLAG_FIN)))
    await client.until(lambda: client.fin_on(3) and client.fin_on(1))
    assert ports == [8080]
    assert [f.stream_id for f in client.frames if isinstance(f, spdy.SynReply)] == [1, 3]
    assert client.data_on(3) == b"early bytes then more" and client.data_on(1) == b""
    await forwarder.feed(client.codec.encode(spdy.Ping(9)))
    await client.until(lambda: spdy.Ping(9) in client.frames)
    await forwarder.close()


async def test_connect_failure_is_reported_on_the_error_stream() -> None:
    client = Client()

    async def refuse(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise ConnectionRefusedError(111, "Connection refused")

    forwarder = PortForwarder(client.receive, refuse, pod="web_default")
    await forwarder.feed(client.open_pair(0, 9999))
    await client.until(lambda: client.fin_on(1))
    assert client.data_on(1).decode().startswith("error forwarding port 9999 to pod web_default:")
    assert client.fin_on(3)


async def test_reset_drops_the_pair(echo_port: int) -> None:
    client = Client()
    writers: list[asyncio.StreamWriter] = []

    async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", echo_port)
        writers.append(writer)
        return reader, writer

    forwarder = PortForwarder(client.receive, connect, pod="p")
    await forwarder.feed(client.open_pair(0, 80) + client.codec.encode(spdy.Data(3, b"x")))
    await client.until(lambda: client.data_on(3) == b"x")
    await forwarder.feed(client.codec.encode(spdy.RstStream(3, spdy.CANCEL)))
    await asyncio.sleep(0)
    assert writers[0].is_closing()
    await forwarder.close()

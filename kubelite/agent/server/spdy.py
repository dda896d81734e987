"""SPDY/3.1 framing, as much of it as kubectl's port-forward uses (client-go's spdystream).

Frames are parsed from a byte stream fed in arbitrary slices (kubectl tunnels SPDY inside
WebSocket messages that need not align with frames), and encoded back. Control frames start with
the control bit and version 3: `0x8003, u16 type, u8 flags, u24 length`; data frames with a 31-bit
stream id: `u32 stream, u8 flags, u24 length`.

Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are `u32 count, (u32 len, name, u32 len, value)*`,
zlib-compressed with the SPDY/3 dictionary. Each direction of a connection is ONE zlib stream:
the compressor and decompressor live as long as the `Codec`, and every block ends with a sync
flush, so a block can be inflated as soon as its frame arrives. Values holding several header
values separate them with NUL; we keep them joined.

Not implemented: flow control (spdystream does not enforce windows; WINDOW_UPDATE is parsed and
ignored), CREDENTIAL frames, server push.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
MAX_LENGTH = (1 << 24) - 1
MAX_HEADER_BLOCK = 1 << 20  # refuse to inflate more than this (a zip bomb in a header block)

# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL, INTERNAL_ERROR = 1, 2, 3, 4, 5, 6


def _dictionary() -> bytes:
    """The SPDY/3 header dictionary (draft 3, section 2.6.10.1): length-prefixed common header
    names and values, then a run of common status lines, dates and content types."""
    words = [
        "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
        "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
        "content-base", "content-encoding", "content-language", "content-length", "content-location",
        "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
        "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
        "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
        "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
        "warning", "www-authenticate", "method", "get", "status",
    ]
    words += ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
        "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
        "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
        "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
        "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
        "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
    )
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + tail.encode()


DICTIONARY = _dictionary()


class SpdyError(Exception):
    """The peer broke the protocol; the connection cannot continue."""


Headers = dict[str, str]


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0
    associated_id: int = 0
    priority: int = 0


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Settings:
    entries: tuple[tuple[int, int, int], ...] = ()  # (flags, id, value)
    flags: int = 0


@dataclass(frozen=True)
class Ping:
    id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = 0


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


@dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes = b""
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass(frozen=True)
class Unknown:
    type: int
    flags: int
    payload: bytes


Frame = SynStream | SynReply | HeadersFrame | RstStream | Settings | Ping | GoAway | WindowUpdate | Data | Unknown


def encode_header_block(headers: Headers) -> bytes:
    parts = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        raw_name, raw_value = name.lower().encode(), value.encode()
        parts += [struct.pack(">I", len(raw_name)), raw_name, struct.pack(">I", len(raw_value)), raw_value]
    return b"".join(parts)


def decode_header_block(raw: bytes) -> Headers:
    try:
        (count,), pos = struct.unpack_from(">I", raw), 4
        headers: Headers = {}
        for _ in range(count):
            name, pos = _string(raw, pos)
            value, pos = _string(raw, pos)
            headers[name.decode()] = value.decode()
    except (struct.error, UnicodeDecodeError) as exc:
        raise SpdyError(f"malformed header block: {exc}") from None
    if pos != len(raw):
        raise SpdyError("header block has trailing bytes")
    return headers


def _string(raw: bytes, pos: int) -> tuple[bytes, int]:
    (length,) = struct.unpack_from(">I", raw, pos)
    end = pos + 4 + length
    if end > len(raw):
        raise struct.error("string runs past the block")
    return raw[pos + 4:end], end


class Codec:
    """One side of a SPDY connection: `feed` bytes as they arrive to get whole frames, `encode`
    frames to send. Holds the connection's two zlib contexts, so use one Codec per connection."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 9,
                                         zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    # ----- reading ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if len(self._buffer) < 8 + length:
                break
            head, payload = bytes(self._buffer[:8]), bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            frames.append(self._frame(head, payload))
        return frames

    def _frame(self, head: bytes, payload: bytes) -> Frame:
        word, flags = struct.unpack_from(">I", head)[0], head[4]
        if not word & 0x80000000:
            return Data(word & 0x7FFFFFFF, payload, flags)
        version, kind = (word >> 16) & 0x7FFF, word & 0xFFFF
        if version != VERSION:
            raise SpdyError(f"SPDY version {version} is not supported (want {VERSION})")
        try:
            return self._control(kind, flags, payload)
        except struct.error as exc:
            raise SpdyError(f"control frame type {kind} too short: {exc}") from None

    def _control(self, kind: int, flags: int, payload: bytes) -> Frame:
        if kind == SYN_STREAM:
            stream_id, associated, priority = struct.unpack_from(">IIB", payload)
            return SynStream(stream_id & 0x7FFFFFFF, self._headers(payload[10:]), flags,
                             associated & 0x7FFFFFFF, priority >> 5)
        if kind in (SYN_REPLY, HEADERS):
            (stream_id,) = struct.unpack_from(">I", payload)
            cls = SynReply if kind == SYN_REPLY else HeadersFrame
            return cls(stream_id & 0x7FFFFFFF, self._headers(payload[4:]), flags)
        if kind == RST_STREAM:
            stream_id, status = struct.unpack_from(">II", payload)
            return RstStream(stream_id & 0x7FFFFFFF, status)
        if kind == SETTINGS:
            return _settings(flags, payload)
        if kind == PING:
            return Ping(struct.unpack_from(">I", payload)[0])
        if kind == GOAWAY:
            last, status = struct.unpack_from(">II", payload) if len(payload) >= 8 else (
                struct.unpack_from(">I", payload)[0], 0)
            return GoAway(last & 0x7FFFFFFF, status)
        if kind == WINDOW_UPDATE:
            stream_id, delta = struct.unpack_from(">II", payload)
            return WindowUpdate(stream_id & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        return Unknown(kind, flags, payload)

    def _headers(self, block: bytes) -> Headers:
        try:
            raw = self._inflate.decompress(block, MAX_HEADER_BLOCK)
        except zlib.error as exc:
            raise SpdyError(f"cannot inflate header block: {exc}") from None
        if self._inflate.unconsumed_tail:
            raise SpdyError("header block too large")
        return decode_header_block(raw)

    # ----- writing ---------------------------------------------------------------------------

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, Data):
            return _data(frame.stream_id, frame.flags, frame.data)
        if isinstance(frame, SynStream):
            body = struct.pack(">IIBB", frame.stream_id, frame.associated_id, (frame.priority & 7) << 5, 0)
            return _control(SYN_STREAM, frame.flags, body + self._compress(frame.headers))
        if isinstance(frame, SynReply | HeadersFrame):
            kind = SYN_REPLY if isinstance(frame, SynReply) else HEADERS
            return _control(kind, frame.flags, struct.pack(">I", frame.stream_id) + self._compress(frame.headers))
        return _encode_simple(frame)

    def _compress(self, headers: Headers) -> bytes:
        return self._deflate.compress(encode_header_block(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


def _encode_simple(frame: Frame) -> bytes:
    if isinstance(frame, RstStream):
        return _control(RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
    if isinstance(frame, Ping):
        return _control(PING, 0, struct.pack(">I", frame.id))
    if isinstance(frame, GoAway):
        return _control(GOAWAY, 0, struct.pack(">II", frame.last_good_stream_id, frame.status))
    if isinstance(frame, WindowUpdate):
        return _control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id, frame.delta))
    if isinstance(frame, Settings):
        body = struct.pack(">I", len(frame.entries)) + b"".join(
            struct.pack(">I", (flags << 24) | (ident & 0xFFFFFF)) + struct.pack(">I", value)
            for flags, ident, value in frame.entries)
        return _control(SETTINGS, frame.flags, body)
    if isinstance(frame, Unknown):
        return _control(frame.type, frame.flags, frame.payload)
    raise TypeError(f"cannot encode {frame!r}")


def _settings(flags: int, payload: bytes) -> Settings:
    (count,) = struct.unpack_from(">I", payload)
    entries = []
    for i in range(count):
        head, value = struct.unpack_from(">II", payload, 4 + 8 * i)
        entries.append((head >> 24, head & 0xFFFFFF, value))
    return Settings(tuple(entries), flags)


def _control(kind: int, flags: int, body: bytes) -> bytes:
    if len(body) > MAX_LENGTH:
        raise ValueError("control frame too long")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(body)) + body


def _data(stream_id: int, flags: int, data: bytes) -> bytes:
    if len(data) > MAX_LENGTH:
        raise ValueError("data frame too long; split it")
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data

"""Container logs in the CRI file format, read as the kubelet serves `kubectl logs`.

A CRI log file holds one record per line: `<RFC3339Nano> <stdout|stderr> <P|F> <text>`; `P`
marks a partial line (the text continues in the next record), `F` a full one. conmon writes
`+00:00` offsets, containerd `Z`; both parse.

Reading a file (upstream's ReadLogs semantics): start `tailLines` records from the end (records,
not joined lines, as upstream counts), drop records older than `since`, prefix each line with
its timestamp (RFC3339Nano with 9 digits, UTC) when asked, stop after `limitBytes` bytes. With
`follow`, wait at the end of the file for appends (polled), re-open the path when it was rotated
(renamed away and re-created) after draining the old file, and stop once the container no
longer runs and the file holds nothing more.

Pure parts (`parse_record`, `Renderer`, `tail_offset`, `options_from_query`, `encode_records`)
are separate from the one I/O loop (`stream_log`).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

STREAMS = (b"stdout", b"stderr")
BLOCK = 64 * 1024
POLL_INTERVAL = 0.1
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)$")


@dataclass(frozen=True)
class LogOptions:
    tail: int | None = None  # records from the end; None: all
    since_ns: int | None = None  # drop records older than this (ns since the epoch)
    timestamps: bool = False
    limit_bytes: int | None = None
    follow: bool = False
    previous: bool = False


@dataclass(frozen=True)
class Record:
    time_ns: int
    stream: str  # "stdout" | "stderr"
    partial: bool
    content: bytes  # a full record's content ends with "\n"


# ----- timestamps --------------------------------------------------------------------------------

def parse_timestamp(text: str) -> int:
    """RFC 3339 with up to 9 fractional digits -> ns since the epoch; ValueError if malformed."""
    match = _TIMESTAMP.match(text)
    if match is None:
        raise ValueError(f"bad timestamp {text!r}")
    base, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    seconds = datetime.fromisoformat(base + zone).timestamp()
    return int(seconds) * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


def format_timestamp(time_ns: int) -> str:
    """ns since the epoch -> `2006-01-02T15:04:05.000000000Z` (upstream's RFC3339NanoFixed, UTC)."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


# ----- records -----------------------------------------------------------------------------------

def parse_record(line: bytes) -> Record | None:
    """One file line (with or without its newline) as a Record; None if it is not CRI format."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in STREAMS:
        return None
    try:
        time_ns = parse_timestamp(parts[0].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    partial = parts[2].split(b":", 1)[0] == b"P"
    content = parts[3] if len(parts) == 4 else b"\n"
    if partial and content.endswith(b"\n"):
        content = content[:-1]
    elif not partial and not content.endswith(b"\n"):
        content += b"\n"  # the last line of a file may lack its newline
    return Record(time_ns, parts[1].decode(), partial, content)


def encode_records(time_ns: int, stream: str, data: bytes) -> bytes:
    """`data` written by a container as CRI records: one F record per line, a P record for a
    trailing piece without newline."""
    stamp = format_timestamp(time_ns).encode()
    out = []
    for piece in data.splitlines(keepends=True):
        full = piece.endswith(b"\n")
        tag = b"F" if full else b"P"
        out.append(b"%s %s %s %s%s" % (stamp, stream.encode(), tag, piece.rstrip(b"\n") if full else piece, b"\n"))
    return b"".join(out)


class Renderer:
    """Turns records into the bytes `kubectl logs` prints, honouring since/timestamps/limitBytes.
    A timestamp prefixes each output line once, not each partial piece of it."""

    def __init__(self, options: LogOptions) -> None:
        self.options = options
        self.remaining = options.limit_bytes if options.limit_bytes is not None else -1
        self._mid_line: dict[str, bool] = {}

    @property
    def exhausted(self) -> bool:
        return self.remaining == 0

    def render(self, record: Record) -> bytes:
        if self.exhausted or (self.options.since_ns is not None and record.time_ns < self.options.since_ns):
            return b""
        out = record.content
        if self.options.timestamps and not self._mid_line.get(record.stream):
            out = format_timestamp(record.time_ns).encode() + b" " + out
        self._mid_line[record.stream] = record.partial
        if self.remaining >= 0:
            out = out[:self.remaining]
            self.remaining -= len(out)
        return out


# ----- options -----------------------------------------------------------------------------------

def options_from_query(query: Mapping[str, str], *, now_ns: int) -> LogOptions:
    """PodLogOptions from query parameters (as the API server forwards them); ValueError if bad."""
    since_ns = None
    if query.get("sinceSeconds"):
        seconds = _int(query, "sinceSeconds", minimum=1)
        since_ns = now_ns - seconds * 1_000_000_000
    if query.get("sinceTime"):
        if since_ns is not None:
            raise ValueError("at most one of `sinceTime` or `sinceSeconds` may be specified")
        since_ns = parse_timestamp(query["sinceTime"])
    return LogOptions(
        tail=_int(query, "tailLines", minimum=0) if query.get("tailLines") else None,
        since_ns=since_ns,
        timestamps=_bool(query.get("timestamps")),
        limit_bytes=_int(query, "limitBytes", minimum=1) if query.get("limitBytes") else None,
        follow=_bool(query.get("follow")),
        previous=_bool(query.get("previous")),
    )


def _int(query: Mapping[str, str], name: str, *, minimum: int) -> int:
    try:
        value = int(query[name])
    except ValueError:
        raise ValueError(f"{name}: invalid value {query[name]!r}: must be an integer") from None
    if value < minimum:
        raise ValueError(f"{name}: Invalid value: {value}: must be greater than "
                         f"{'or equal to 0' if minimum == 0 else str(minimum - 1)}")
    return value


def _bool(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


# ----- tail --------------------------------------------------------------------------------------

def tail_offset(f: BinaryIO, lines: int | None) -> int:
    """Where the last `lines` lines of `f` start (upstream's FindTailLineStartIndex: every newline
    counts, so a file ending in a newline yields exactly `lines` lines)."""
    if lines is None:
        return 0
    size = f.seek(0, os.SEEK_END)
    right, count, chunk = size, 0, b""
    left = size
    while right > 0 and count <= lines:
        left = max(0, right - BLOCK)
        f.seek(left)
        chunk = f.read(right - left)
        count += chunk.count(b"\n")
        right = left
    while count > lines:
        cut = chunk.index(b"\n") + 1
        chunk, left, count = chunk[cut:], left + cut, count - 1
    return left


# ----- the reading loop --------------------------------------------------------------------------

async def stream_log(path: Path, options: LogOptions, *, running: Callable[[], bool],
                     poll: float = POLL_INTERVAL) -> AsyncIterator[bytes]:
    """The rendered log of `path`, in chunks; follows appends and rotation while `running()`."""
    renderer = Renderer(options)
    f = path.open("rb")
    try:
        f.seek(tail_offset(f, options.tail))
        pending, last_chance = b"", False
        while not renderer.exhausted:
            data = f.read(BLOCK)
            if data:
                pending += data
                lines, pending = _split(pending)
                out = b"".join(renderer.render(r) for r in map(parse_record, lines) if r is not None)
                if out:
                    yield out
                continue
            if not options.follow or last_chance:
                break
            if not running():
                last_chance = True  # read once more: the container may have written before exiting
                continue
            await asyncio.sleep(poll)
            if _rotated(path, f):
                f.close()
                f = path.open("rb")
        if pending and not renderer.exhausted and (record := parse_record(pending)) is not None:
            yield renderer.render(record)
    finally:
        f.close()


def _split(buffer: bytes) -> tuple[list[bytes], bytes]:
    cut = buffer.rfind(b"\n") + 1
    return buffer[:cut].splitlines(keepends=True), buffer[cut:]


def _rotated(path: Path, f: BinaryIO) -> bool:
    """The path now names another file (renamed away and re-created); the old one is drained."""
    try:
        current = path.stat()
    except FileNotFoundError:
        return False  # between the rename and the new file: keep draining the old one
    opened = os.fstat(f.fileno())
    if (current.st_ino, current.st_dev) == (opened.st_ino, opened.st_dev):
        return False
    return f.tell() >= opened.st_size

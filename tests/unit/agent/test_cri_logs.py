"""CRI log files as `kubectl logs` reads them: parsing, tail, since, timestamps, limitBytes, follow
(appends and rotation)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from kubelite.agent.server import crilog
from kubelite.agent.server.crilog import LogOptions, Record

T0 = 1_700_000_000_000_000_000  # ns
SECOND = 1_000_000_000


def record_line(offset_s: float, text: str, *, stream: str = "stdout", tag: str = "F") -> bytes:
    stamp = crilog.format_timestamp(T0 + int(offset_s * SECOND))
    return f"{stamp} {stream} {tag} {text}\n".encode()


def render_all(records: list[bytes], options: LogOptions) -> bytes:
    renderer = crilog.Renderer(options)
    parsed = [crilog.parse_record(line) for line in records]
    return b"".join(renderer.render(r) for r in parsed if r is not None)


# ----- parsing -------------------------------------------------------------------------------------

def test_parse_full_and_partial_records() -> None:
    full = crilog.parse_record(b"2026-11-25T21:22:29.113998379+00:00 stdout F hello world\n")
    assert full == Record(crilog.parse_timestamp("2026-11-25T21:22:29.113998379Z"), "stdout", False,
                          b"hello world\n")
    partial = crilog.parse_record(b"2016-10-06T00:17:09.669794202Z stderr P log content 1\n")
    assert partial is not None and (partial.stream, partial.partial, partial.content) == ("stderr", True,
                                                                                          b"log content 1")
    assert crilog.parse_record(b"2016-10-06T00:17:09Z stdout F\n") == Record(
        crilog.parse_timestamp("2016-10-06T00:17:09Z"), "stdout", False, b"\n")  # an empty line
    tagged = crilog.parse_record(b"2016-10-06T00:17:09Z stdout F:x text")
    assert tagged is not None and tagged.content == b"text\n"  # tags after ':' are ignored; newline added


@pytest.mark.parametrize("line", [b"", b"garbage\n", b"2016-10-06T00:17:09Z stdin F x\n",
                                  b"not-a-time stdout F x\n", b'{"log":"docker json"}\n'])
def test_parse_rejects_other_formats(line: bytes) -> None:
    assert crilog.parse_record(line) is None


def test_timestamps_keep_nanoseconds_and_normalise_to_utc() -> None:
    ns = crilog.parse_timestamp("2026-11-25T23:22:29.000000001+02:00")
    assert crilog.format_timestamp(ns) == "2026-11-25T21:22:29.000000001Z"
    assert crilog.parse_timestamp("2026-11-25T21:22:29.5Z") == crilog.parse_timestamp("2026-11-25T21:22:29Z") + \
        SECOND // 2
    with pytest.raises(ValueError):
        crilog.parse_timestamp("2026-11-25 21:22:29")


def test_encode_records_splits_lines_and_marks_a_trailing_piece_partial() -> None:
    raw = crilog.encode_records(T0, "stderr", b"one\ntwo\nthr")
    lines = raw.splitlines(keepends=True)
    assert [line.split(b" ", 3)[1:] for line in lines] == [
        [b"stderr", b"F", b"one\n"], [b"stderr", b"F", b"two\n"], [b"stderr", b"P", b"thr\n"]]
    assert render_all(lines, LogOptions()) == b"one\ntwo\nthr"


# ----- rendering -----------------------------------------------------------------------------------

def test_since_drops_older_records() -> None:
    lines = [record_line(0, "old"), record_line(10, "new")]
    assert render_all(lines, LogOptions(since_ns=T0 + 5 * SECOND)) == b"new\n"


def test_timestamps_prefix_each_line_once_even_across_partials() -> None:
    lines = [record_line(0, "par", tag="P"), record_line(1, "tial"), record_line(2, "next")]
    out = render_all(lines, LogOptions(timestamps=True)).decode().splitlines()
    assert out == [f"{crilog.format_timestamp(T0)} partial", f"{crilog.format_timestamp(T0 + 2 * SECOND)} next"]


def test_limit_bytes_cuts_mid_line_and_stops() -> None:
    renderer = crilog.Renderer(LogOptions(limit_bytes=5))
    first = crilog.parse_record(record_line(0, "abc"))
    second = crilog.parse_record(record_line(1, "defgh"))
    assert first is not None and second is not None
    assert renderer.render(first) + renderer.render(second) == b"abc\nd"
    assert renderer.exhausted and renderer.render(first) == b""


def test_options_from_query() -> None:
    now = T0
    opts = crilog.options_from_query({"tailLines": "2", "sinceSeconds": "60", "timestamps": "true",
                                      "limitBytes": "10", "follow": "true", "previous": "false"}, now_ns=now)
    assert opts == LogOptions(tail=2, since_ns=now - 60 * SECOND, timestamps=True, limit_bytes=10, follow=True)
    since = crilog.options_from_query({"sinceTime": "2026-01-01T00:00:00Z"}, now_ns=now)
    assert since.since_ns == crilog.parse_timestamp("2026-01-01T00:00:00Z")
    for bad in ({"tailLines": "-1"}, {"limitBytes": "0"}, {"sinceSeconds": "x"},
                {"sinceSeconds": "1", "sinceTime": "2026-01-01T00:00:00Z"}, {"sinceTime": "yesterday"}):
        with pytest.raises(ValueError):
            crilog.options_from_query(bad, now_ns=now)


# ----- tail ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "lines", "expected"), [
    (b"a\nb\nc\n", 2, b"b\nc\n"),
    (b"a\nb\nc\n", 0, b""),
    (b"a\nb\nc\n", 5, b"a\nb\nc\n"),
    (b"a\nb\nc\n", None, b"a\nb\nc\n"),
    (b"a\nb\nc", 1, b"b\nc"),  # upstream counts newlines: an unterminated last line comes as a bonus
    (b"", 3, b""),
])
def test_tail_offset(text: bytes, lines: int | None, expected: bytes) -> None:
    f = io.BytesIO(text)
    assert text[crilog.tail_offset(f, lines):] == expected


def test_tail_offset_across_blocks() -> None:
    text = b"".join(b"%06d %s\n" % (i, b"x" * 500) for i in range(1000))  # ~500 KiB: several blocks
    f = io.BytesIO(text)
    tail = text[crilog.tail_offset(f, 300):]
    assert tail.count(b"\n") == 300 and tail.startswith(b"000700 ")


# ----- reading files -------------------------------------------------------------------------------

async def collect(path: Path, options: LogOptions, running: object = lambda: False) -> bytes:
    chunks = [chunk async for chunk in crilog.stream_log(path, options, running=running, poll=0.01)]  # type: ignore[arg-type]
    return b"".join(chunks)


async def test_read_with_tail_and_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(b"".join(record_line(i, f"line {i}") for i in range(5)))
    assert await collect(path, LogOptions()) == b"".join(b"line %d\n" % i for i in range(5))
    out = await collect(path, LogOptions(tail=2, timestamps=True))
    assert out.decode().splitlines() == [f"{crilog.format_timestamp(T0 + i * SECOND)} line {i}" for i in (3, 4)]


async def test_follow_sees_appends_and_ends_when_the_container_stops(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(record_line(0, "first"))
    running = True
    received: list[bytes] = []

    async def follow() -> None:
        async for chunk in crilog.stream_log(path, LogOptions(follow=True), running=lambda: running, poll=0.01):
            received.append(chunk)

    task = asyncio.create_task(follow())
    await _until(lambda: received == [b"first\n"])
    with path.open("ab") as f:
        f.write(record_line(1, "half", tag="P")[:-8])  # a record cut mid-write waits for its end
        f.flush()
        await asyncio.sleep(0.05)
        assert received == [b"first\n"]
        f.write(record_line(1, "half", tag="P")[-8:] + record_line(2, "-done"))
    await _until(lambda: b"".join(received) == b"first\nhalf-done\n")
    assert not task.done()
    with path.open("ab") as f:
        f.write(record_line(3, "last words"))
    running = False  # what the container wrote before it stopped is still delivered
    await asyncio.wait_for(task, 2)
    assert b"".join(received) == b"first\nhalf-done\nlast words\n"


async def test_follow_survives_rotation(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(record_line(0, "before"))
    running = True
    received: list[bytes] = []

    async def follow() -> None:
        async for chunk in crilog.stream_log(path, LogOptions(follow=True), running=lambda: running, poll=0.01):
            received.append(chunk)

    task = asyncio.create_task(follow())
    await _until(lambda: b"".join(received) == b"before\n")
    with path.open("ab") as f:
        f.write(record_line(1, "tail of the old file"))
    path.rename(tmp_path / "0.log.20260101-000000")  # the kubelet's rotation: rename, then a new file
    path.write_bytes(record_line(2, "in the new file"))
    await _until(lambda: b"".join(received) == b"before\ntail of the old file\nin the new file\n")
    running = False
    await asyncio.wait_for(task, 2)


async def test_limit_bytes_ends_a_follow(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(record_line(0, "0123456789"))
    out = await asyncio.wait_for(collect(path, LogOptions(follow=True, limit_bytes=4), running=lambda: True), 2)
    assert out == b"0123"


async def _until(check: object, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)

"""Unpacking through the 1 MiB read buffer (snapshots.READ_BUFFER): entries and file data that
straddle buffer boundaries come out whole, the diff ID still covers every byte of the tar stream
(including padding after the end-of-archive blocks, which tarfile never reads), and the safety
checks still refuse what they refused before, wherever in the stream it sits."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import os
import random
from pathlib import Path

import pytest

from kubelite.images.layers import LayerError
from kubelite.images.oci import digest_of
from kubelite.images.snapshots import READ_BUFFER, unpack_layer
from kubelite.images.testimages import LayerBuilder

ROOT = os.geteuid() == 0


def _payloads() -> dict[str, bytes]:
    rng = random.Random(6)
    sizes = [0, 1, 511, 512, 513, 10240, READ_BUFFER - 1, READ_BUFFER + 1, 3 * READ_BUFFER + 7]
    return {f"d/f{i}-{n}": rng.randbytes(n) for i, n in enumerate(sizes)} | {
        f"small/{i}": rng.randbytes(rng.randrange(0, 4000)) for i in range(400)}


def _layer(files: dict[str, bytes]) -> bytes:
    builder = LayerBuilder()
    for path, data in files.items():
        builder.file(path, data)
    return builder.build()


def _unpack(tmp_path: Path, blob_bytes: bytes, diff_id: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    blob, dest = tmp_path / "blob", tmp_path / "dest"
    blob.write_bytes(blob_bytes)
    dest.mkdir()
    unpack_layer(blob, dest, diff_id=diff_id, privileged=ROOT)
    return dest


@pytest.mark.parametrize("compress", [None, gzip.compress, bz2.compress])
def test_entries_across_buffer_boundaries_come_out_whole(tmp_path: Path, compress) -> None:  # type: ignore[no-untyped-def]
    files = _payloads()
    layer = _layer(files)
    assert len(layer) > 4 * READ_BUFFER
    dest = _unpack(tmp_path, compress(layer) if compress else layer, digest_of(layer))
    for path, data in files.items():
        got = (dest / path).read_bytes()
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), path


def test_the_diff_id_covers_padding_after_the_end_of_archive(tmp_path: Path) -> None:
    layer = _layer({"a": b"x" * (READ_BUFFER + 5)}) + b"\0" * (2 * READ_BUFFER)  # as `tar` pads to records
    dest = _unpack(tmp_path, layer, digest_of(layer))
    assert (dest / "a").stat().st_size == READ_BUFFER + 5
    with pytest.raises(LayerError, match="does not match its diff ID"):
        _unpack(tmp_path / "other", layer, digest_of(layer[:-1]))


def test_a_flipped_byte_deep_in_the_stream_fails_the_diff_id(tmp_path: Path) -> None:
    layer = bytearray(_layer({"big": bytes(3 * READ_BUFFER)}))
    layer[2 * READ_BUFFER] ^= 1  # inside the file's data, two buffers in
    with pytest.raises(LayerError, match="does not match its diff ID"):
        _unpack(tmp_path, bytes(layer), digest_of(_layer({"big": bytes(3 * READ_BUFFER)})))


def test_an_escaping_entry_after_a_megabyte_is_still_refused(tmp_path: Path) -> None:
    import tarfile

    escape = tarfile.TarInfo("../escaped")
    layer = LayerBuilder().file("pad", os.urandom(READ_BUFFER + 100)).add(escape, b"boom").build()
    with pytest.raises(LayerError, match="escapes"):
        _unpack(tmp_path, layer, digest_of(layer))
    assert not (tmp_path / "escaped").exists()

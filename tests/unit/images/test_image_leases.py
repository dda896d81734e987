"""Leases keep content from the collector while their holder lives, in this process or another, and
stop mattering when it is gone (released, or the process died without a word)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kubelite.images.store import ImageStore
from kubelite.images.testimages import LayerBuilder, build_image, write_layout

LAYER = LayerBuilder().file("leased", "x").build()
NAME = "example.com/leased:1"


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    store = ImageStore(tmp_path / "store")
    store.import_oci_layout(write_layout(tmp_path / "layout", {NAME: build_image([LAYER])}))
    return store


def unnamed_blobs(store: ImageStore) -> set[str]:
    """Drop the only name (no collection yet): every blob is unnamed now."""
    store.remove(NAME, prune=False)
    return store.blobs.digests()


def test_a_lease_keeps_blobs_and_snapshots_until_released(store: ImageStore) -> None:
    diff_ids = store.snapshots.diff_ids()
    blobs = unnamed_blobs(store)
    with store.lease(blobs | diff_ids) as lease:
        gc = store.gc()
        assert gc.blobs == [] and gc.snapshots == []
        assert lease.path.exists()
    assert not lease.path.exists()
    gc = store.gc()
    assert set(gc.blobs) == blobs and set(gc.snapshots) == diff_ids


def test_a_lease_can_grow(store: ImageStore) -> None:
    blobs = sorted(unnamed_blobs(store))
    with store.lease(blobs[:1]) as lease:
        lease.add(blobs[1:])
        assert store.gc().blobs == []
        assert json.loads(lease.path.read_text())["digests"] == blobs


def test_a_lease_held_by_another_process_counts_and_dies_with_it(store: ImageStore) -> None:
    blobs = unnamed_blobs(store)
    holder = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from kubelite.images.store import ImageStore
        lease = ImageStore(Path({str(store.root)!r})).lease({sorted(blobs)!r})
        print("held", flush=True)
        sys.stdin.read()  # until the test closes our stdin (or kills us)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert store.gc().blobs == []  # alive: its lease holds
        proc.kill()  # no release: the kernel drops its flock
        proc.wait(timeout=10)
        assert set(store.gc().blobs) == blobs
        assert list(store.leases.dir.iterdir()) == []  # the stale lease file went with it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_a_lease_file_nobody_holds_is_ignored_and_removed(store: ImageStore) -> None:
    blobs = unnamed_blobs(store)
    store.leases.dir.mkdir(exist_ok=True)
    stale = store.leases.dir / "0123456789abcdef.lease"
    stale.write_text(json.dumps({"pid": 1, "digests": sorted(blobs)}))  # a crashed holder's leftover
    assert set(store.gc().blobs) == blobs
    assert not stale.exists()


def test_an_unreadable_live_lease_protects_nothing_but_breaks_nothing(store: ImageStore) -> None:
    blobs = unnamed_blobs(store)
    with store.lease(blobs) as lease:
        lease.path.write_text("not json")  # nothing of ours writes this; the collector must cope
        assert set(store.gc().blobs) == blobs

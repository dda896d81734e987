"""`ImageStore.adopt`: a pull's verified staged blobs become the store's by rename, named in the
same locked step; the garbage collector racing it (at every point in between) never leaves a name
without its content nor deletes what the adopt counts on; a failure or interruption anywhere
leaves no blob, no name, nothing staged and no lease behind."""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from kubelite.images import publish
from kubelite.images.blobs import DigestMismatch, Ingest, Staging
from kubelite.images.layers import LayerError
from kubelite.images.oci import Descriptor, ImageFormatError, canonical_json, digest_of
from kubelite.images.store import ImageStore
from kubelite.images.testimages import BuiltImage, LayerBuilder, build_image, write_layout

BASE = LayerBuilder().dir("bin").file("bin/tool", "#!/bin/sh\n", 0o755).build()
APP = LayerBuilder().dir("app").file("app/main", "main").build()
NAME = "example.com/team/app:1"


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


def app_image(*layers: bytes) -> BuiltImage:
    return build_image(list(layers or (BASE, APP)), cmd=["/app/main"])


def stage(store: ImageStore, image: BuiltImage, *, skip: Collection[str] = ()) -> list[Ingest]:
    """What a pull does: every blob but the manifest streamed into an ingest of its own, verified."""
    ingests = []
    for digest, data in image.blobs.items():
        if digest != image.manifest.digest and digest not in skip:
            ingest = store.blobs.ingest()
            ingest.add_stream(io.BytesIO(data), digest=digest, size=len(data))
            ingests.append(ingest)
    return ingests


def adopt(store: ImageStore, image: BuiltImage, ingests: list[Ingest], name: str = NAME, *,
          manifest: dict[str, Any] | None = None) -> None:
    """What a pull does next (`manifest`: one edited from the image's), then abort the ingests."""
    data = canonical_json(manifest) if manifest is not None else image.blobs[image.manifest.digest]
    top = Descriptor(image.manifest.media_type, digest_of(data), len(data))
    try:
        store.adopt(name, top, documents={top.digest: data}, staged=ingests)
    finally:
        for ingest in ingests:
            ingest.abort()


def layer_digests(image: BuiltImage) -> list[str]:
    return [layer["digest"] for layer in json.loads(image.blobs[image.manifest.digest])["layers"]]


def leftovers(store: ImageStore) -> dict[str, list[str]]:
    """Everything but the store's empty skeleton."""
    def listing(path: Path) -> list[str]:
        return sorted(os.listdir(path)) if path.exists() else []
    return {"blobs": sorted(store.blobs.digests()), "names": [e.name for e in store.index.entries()],
            "ingest": listing(store.blobs.ingest_dir), "leases": listing(store.leases.dir)}


NOTHING: dict[str, list[str]] = {"blobs": [], "names": [], "ingest": [], "leases": []}


def assert_complete(store: ImageStore, image: BuiltImage, name: str = NAME) -> None:
    record = store.get(name)
    assert record.digest == image.manifest.digest
    assert set(image.blobs) <= store.blobs.digests()
    assert all(path.is_dir() for path in record.layer_dirs)


# -- the adopt itself ----------------------------------------------------------------------------------

def test_adopt_renames_the_staged_files_into_the_store(store: ImageStore) -> None:
    image = app_image()
    ingests = stage(store, image)
    inodes = {d: ingest.path(d).stat().st_ino for ingest in ingests for d in ingest.staged}
    adopt(store, image, ingests)
    assert_complete(store, image)
    assert {d: store.blobs.path(d).stat().st_ino for d in inodes} == inodes  # moved, not copied
    assert (store.get(NAME).layer_dirs[1] / "app/main").read_text() == "main"
    assert leftovers(store) | {"blobs": [], "names": []} == NOTHING  # no staging, no lease left


def test_blobs_the_store_has_need_not_be_staged(store: ImageStore) -> None:
    first = app_image(BASE)
    adopt(store, first, stage(store, first), name="example.com/base:1")
    second = app_image()
    adopt(store, second, stage(store, second, skip=set(first.blobs)))
    assert_complete(store, second)
    assert_complete(store, first, "example.com/base:1")


def test_a_document_that_is_not_what_its_digest_says_stores_nothing(store: ImageStore) -> None:
    image = app_image()
    ingests = stage(store, image)
    with pytest.raises(DigestMismatch):
        store.adopt(NAME, image.manifest, documents={image.manifest.digest: b"{}"}, staged=ingests)
    for ingest in ingests:
        ingest.abort()
    assert leftovers(store) == NOTHING


def test_a_missing_blob_stores_nothing(store: ImageStore) -> None:
    image = app_image()
    with pytest.raises(ImageFormatError, match="neither staged nor in the store"):
        adopt(store, image, stage(store, image, skip={layer_digests(image)[1]}))
    assert leftovers(store) == NOTHING


def test_a_descriptor_size_that_disagrees_with_the_staged_file_stores_nothing(store: ImageStore) -> None:
    image = app_image()
    manifest = json.loads(image.blobs[image.manifest.digest])
    manifest["layers"][1]["size"] += 1  # the staged layer itself is intact
    with pytest.raises(ImageFormatError, match="descriptor says"):
        adopt(store, image, stage(store, image), manifest=manifest)
    assert leftovers(store) == NOTHING


def test_ingests_of_another_store_are_refused(store: ImageStore, tmp_path: Path) -> None:
    other = ImageStore(tmp_path / "other")
    image = app_image()
    ingests = stage(other, image)
    with pytest.raises(ValueError, match="another store"):
        adopt(store, image, ingests)
    assert leftovers(store) == NOTHING


# -- the collector racing it ---------------------------------------------------------------------------

def base_in_store(store: ImageStore, tmp_path: Path) -> BuiltImage:
    """An image whose BASE layer a later adopt finds in the store (and so does not stage)."""
    base = app_image(BASE)
    store.import_oci_layout(write_layout(tmp_path / "layout", {"example.com/base:1": base}))
    return base


def test_a_gc_while_the_pull_fetches_keeps_what_its_lease_holds(store: ImageStore, tmp_path: Path) -> None:
    base = base_in_store(store, tmp_path)
    image = app_image()
    with store.lease([image.manifest.digest, *image.blobs]):  # as pull_image does, before it looks
        ingests = stage(store, image, skip=set(base.blobs))  # BASE is there: not fetched
        removed, gc = store.remove("example.com/base:1")  # nothing names BASE any more
        assert removed == ["example.com/base:1"] and layer_digests(image)[0] not in gc.blobs
        adopt(store, image, ingests)
    assert_complete(store, image)
    assert leftovers(store)["leases"] == []


def test_without_the_lease_the_adopt_refuses_rather_than_dangle(store: ImageStore, tmp_path: Path) -> None:
    base = base_in_store(store, tmp_path)
    image = app_image()
    ingests = stage(store, image, skip=set(base.blobs))
    store.remove("example.com/base:1")  # collects BASE: the staging counted on it
    with pytest.raises(ImageFormatError, match="neither staged nor in the store"):
        adopt(store, image, ingests)
    assert leftovers(store) == NOTHING


def test_a_blob_collected_before_the_lock_is_caught_under_it(store: ImageStore, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: were there no lease, the check under the lock would still refuse the name."""
    base = base_in_store(store, tmp_path)
    store.remove("example.com/base:1", prune=False)
    image = app_image()
    monkeypatch.setattr(store.leases, "take", lambda digests=(): contextlib.nullcontext())
    unpacked = publish.unpack

    def then_collect(*args, **kwargs):  # type: ignore[no-untyped-def]
        unpacked(*args, **kwargs)  # BASE's snapshot is there, so its blob was not read...
        store.gc()  # ...and is gone now, before the lock

    monkeypatch.setattr(publish, "unpack", then_collect)
    with pytest.raises(ImageFormatError, match="removed from the store while"):
        adopt(store, image, stage(store, image, skip=set(base.blobs)))
    assert leftovers(store) == NOTHING  # the blobs it had moved in went back out, no name written


def test_a_gc_between_unpacking_and_naming_deletes_nothing_of_it(store: ImageStore, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    base = base_in_store(store, tmp_path)
    store.remove("example.com/base:1", prune=False)  # BASE's blobs and snapshot: unnamed, collectable
    image = app_image()
    unpacked = publish.unpack
    collected = []

    def then_collect(*args, **kwargs):  # type: ignore[no-untyped-def]
        unpacked(*args, **kwargs)
        collected.append(store.gc())  # from another thread it would be the same: the lock and the lease decide

    monkeypatch.setattr(publish, "unpack", then_collect)
    adopt(store, image, stage(store, image, skip=set(base.blobs)))
    assert_complete(store, image)
    kept = {*layer_digests(image), *image.config["rootfs"]["diff_ids"]}
    assert not kept & {*collected[0].blobs, *collected[0].snapshots}
    assert set(collected[0].blobs) == {base.manifest.digest, digest_of(canonical_json(base.config))}  # base's own only


def test_adopts_beside_a_collector_in_a_loop(store: ImageStore, tmp_path: Path) -> None:
    """A collector thread runs without pause while images that share a layer no name holds any more
    are pulled one after another: every adopt succeeds and every named image is whole."""
    base = base_in_store(store, tmp_path)
    stop = threading.Event()
    errors: list[BaseException] = []

    def collect() -> None:
        try:
            while not stop.is_set():
                store.gc()
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            errors.append(e)

    collector = threading.Thread(target=collect)
    collector.start()
    try:
        previous = "example.com/base:1"
        for i in range(12):
            image = app_image(BASE, LayerBuilder().file(f"app/{i}", str(i)).build())
            name = f"example.com/team/app:{i}"
            with store.lease([image.manifest.digest, *image.blobs]):
                ingests = stage(store, image, skip={d for d in base.blobs if store.blobs.exists(d)})
                store.remove(previous, prune=False)  # the only name on BASE goes; the collector runs on
                adopt(store, image, ingests, name=name)
            assert_complete(store, image, name)
            previous = name
    finally:
        stop.set()
        collector.join()
    assert errors == []
    assert leftovers(store)["leases"] == [] and leftovers(store)["ingest"] == []


# -- interruptions -------------------------------------------------------------------------------------

def test_an_interruption_while_naming_leaves_no_blob_and_no_name(store: ImageStore,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    image = app_image()

    def interrupted(entries):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(store.index, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        adopt(store, image, stage(store, image))
    assert leftovers(store) == NOTHING
    store.gc()
    assert store.snapshots.diff_ids() == set()  # what it had unpacked is unnamed: the collector's


def test_a_layer_that_fails_to_unpack_leaves_nothing(store: ImageStore) -> None:
    image = app_image()
    config = dict(image.config, rootfs={"type": "layers", "diff_ids": [digest_of(BASE), digest_of(b"not APP")]})
    config_bytes = canonical_json(config)
    manifest = json.loads(image.blobs[image.manifest.digest])
    manifest["config"] |= {"digest": digest_of(config_bytes), "size": len(config_bytes)}
    ingests = stage(store, image, skip={digest_of(canonical_json(image.config))})
    ingests[0].add_bytes(config_bytes)
    with pytest.raises(LayerError, match="diff ID"):
        adopt(store, image, ingests, manifest=manifest)
    assert leftovers(store) == NOTHING and store.snapshots.diff_ids() == set()


def test_a_commit_that_fails_part_way_takes_back_what_it_moved(store: ImageStore,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    image = app_image()
    ingests = stage(store, image)
    real_rename, calls = os.rename, []

    def second_fails(src, dst):  # type: ignore[no-untyped-def]
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", second_fails)
    with store.index.locked(), pytest.raises(OSError, match="No space"):
        Staging(store.blobs, ingests).commit()
    for ingest in ingests:
        ingest.abort()
    assert store.blobs.digests() == set()

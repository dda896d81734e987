"""ImageStore round trips: import, lookups, names, garbage collection, verification that stores
nothing when anything is wrong, docker-archive load/save."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
import threading
from pathlib import Path

import pytest

from kubelite.images import store as store_module
from kubelite.images.api import ImageNotFound, InvalidImageName
from kubelite.images.archive import layout_names
from kubelite.images.blobs import DigestMismatch
from kubelite.images.layers import LayerError
from kubelite.images.oci import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    OCI_INDEX,
    Descriptor,
    ImageFormatError,
    canonical_json,
    digest_of,
    host_platform,
)
from kubelite.images.store import ImageStore
from kubelite.images.testimages import BuiltImage, LayerBuilder, build_image, write_layout

BASE = LayerBuilder().dir("bin").file("bin/tool", "#!/bin/sh\n", 0o755).dir("etc").file("etc/group", "root:x:0:\n").build()
APP = LayerBuilder().dir("app").file("app/main", "main").build()
OTHER = LayerBuilder().file("other", "o").build()


def images() -> dict[str, BuiltImage]:
    return {"docker.io/library/base:1": build_image([BASE], cmd=["sh"]),
            "example.com/team/app:2": build_image([BASE, APP], cmd=["/app/main"], gzip_level=None)}


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    return write_layout(tmp_path / "layout", images())


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


def stored_files(store: ImageStore) -> dict[str, list[str]]:
    return {"blobs": sorted(store.blobs.digests()), "snapshots": sorted(store.snapshots.diff_ids()),
            "names": [e.name for e in store.index.entries()],
            "ingest": os.listdir(store.blobs.ingest_dir) if store.blobs.ingest_dir.exists() else []}


EMPTY = {"blobs": [], "snapshots": [], "names": [], "ingest": []}


def test_import_and_get(store: ImageStore, layout: Path) -> None:
    built = images()
    records = store.import_oci_layout(layout)
    assert sorted(r.reference for r in records) == ["docker.io/library/base:1", "example.com/team/app:2"]
    app = store.get("example.com/team/app:2")
    want = built["example.com/team/app:2"]
    assert app.digest == want.manifest.digest
    assert app.id == digest_of(canonical_json(want.config))
    assert app.config["config"]["Cmd"] == ["/app/main"]
    assert app.layer_dirs == (store.snapshots.path(digest_of(BASE)), store.snapshots.path(digest_of(APP)))
    assert (app.layer_dirs[0] / "bin/tool").read_text() == "#!/bin/sh\n"
    assert (app.layer_dirs[1] / "app/main").read_text() == "main"
    assert app.size == sum(len(b) for d, b in want.blobs.items() if d != want.manifest.digest)
    base = store.get("base:1")
    assert base.reference == "docker.io/library/base:1" and base.layer_dirs[0] == app.layer_dirs[0]
    assert sorted(r.reference for r in store.list()) == ["docker.io/library/base:1", "example.com/team/app:2"]
    again = store.import_oci_layout(layout)  # idempotent
    assert [r.digest for r in again] == [r.digest for r in records]
    assert len(store.snapshots.diff_ids()) == 2


def test_lookups(store: ImageStore, layout: Path) -> None:
    store.import_oci_layout(layout)
    app = store.get("example.com/team/app:2")
    assert store.get(app.id).id == app.id
    assert store.get(app.id.removeprefix("sha256:")).id == app.id
    assert store.get(app.id[7:19]).reference == "example.com/team/app:2"  # a short ID, as docker
    assert store.get(f"example.com/team/app@{app.digest}").reference == f"example.com/team/app@{app.digest}"
    with pytest.raises(ImageNotFound):
        store.get(f"example.com/other@{app.digest}")  # a digest is found within its repository only
    with pytest.raises(ImageNotFound, match="docker.io/library/nothere:latest"):
        store.get("nothere")
    with pytest.raises(ImageNotFound):
        store.get("example.com/team/app")  # :latest was never imported
    with pytest.raises(InvalidImageName):
        store.get("Bad/Name")


def test_store_root_is_an_oci_layout(store: ImageStore, layout: Path) -> None:
    store.import_oci_layout(layout)
    assert json.loads((store.root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((store.root / "index.json").read_text())
    assert index["mediaType"] == OCI_INDEX
    names = sorted(m["annotations"][ANNOTATION_REF_NAME] for m in index["manifests"])
    assert names == ["docker.io/library/base:1", "example.com/team/app:2"]
    for m in index["manifests"]:
        assert m["annotations"][ANNOTATION_IMAGE_NAME] == m["annotations"][ANNOTATION_REF_NAME]
        assert (store.root / "blobs/sha256" / m["digest"][7:]).stat().st_size == m["size"]


def corrupt_blob(layout: Path, digest: str, data: bytes | None = None) -> None:
    path = layout / "blobs/sha256" / digest[7:]
    path.write_bytes(data if data is not None else path.read_bytes()[:-1] + b"!")


def test_a_corrupt_layer_stores_nothing(store: ImageStore, layout: Path) -> None:
    app = images()["example.com/team/app:2"]
    corrupt_blob(layout, digest_of(APP))  # the uncompressed APP layer: its digest is its diff ID
    with pytest.raises(DigestMismatch, match="does not match"):
        store.import_oci_layout(layout)
    assert stored_files(store) == EMPTY  # not even the base image, which was fine
    corrupt_blob(layout, digest_of(APP), APP)
    corrupt_blob(layout, app.manifest.digest, app.blobs[app.manifest.digest] + b" ")
    with pytest.raises(DigestMismatch):
        store.import_oci_layout(layout)
    assert stored_files(store) == EMPTY


def test_wrong_size_or_missing_blob_stores_nothing(store: ImageStore, tmp_path: Path) -> None:
    image = build_image([BASE])
    manifest = json.loads(image.blobs[image.manifest.digest])
    manifest["layers"][0]["size"] += 1
    data = canonical_json(manifest)
    lying = BuiltImage(Descriptor(image.manifest.media_type, digest_of(data), len(data)), image.config,
                       {**image.blobs, digest_of(data): data})
    with pytest.raises(DigestMismatch, match="descriptor says"):
        store.import_oci_layout(write_layout(tmp_path / "a", {"x:1": lying}))
    layout = write_layout(tmp_path / "b", {"x:1": image})
    (layout / "blobs/sha256" / manifest["config"]["digest"][7:]).unlink()
    with pytest.raises(ImageFormatError, match="missing"):
        store.import_oci_layout(layout)
    assert stored_files(store) == EMPTY


def test_a_wrong_diff_id_stores_nothing(store: ImageStore, tmp_path: Path) -> None:
    image = build_image([BASE, APP])
    config = dict(image.config, rootfs={"type": "layers", "diff_ids": [digest_of(BASE), digest_of(OTHER)]})
    forged = build_image([BASE, APP])  # same layers, then a config that lies about the second one
    cfg = canonical_json(config)
    manifest = json.loads(forged.blobs[forged.manifest.digest])
    manifest["config"] = {**manifest["config"], "digest": digest_of(cfg), "size": len(cfg)}
    mdata = canonical_json(manifest)
    bad = BuiltImage(Descriptor(forged.manifest.media_type, digest_of(mdata), len(mdata)), config,
                     {**forged.blobs, digest_of(cfg): cfg, digest_of(mdata): mdata})
    with pytest.raises(LayerError, match="does not match its diff ID"):
        store.import_oci_layout(write_layout(tmp_path / "l", {"x:1": bad}))
    assert stored_files(store) == EMPTY


def test_a_hostile_layer_stores_nothing(store: ImageStore, tmp_path: Path) -> None:
    evil = LayerBuilder().symlink("etc", "/etc").file("etc/kubelite-pwned", "x").build()
    with pytest.raises(LayerError, match="not a directory"):
        store.import_oci_layout(write_layout(tmp_path / "l", {"x:1": build_image([BASE, evil])}))
    assert stored_files(store) == EMPTY
    assert not Path("/etc/kubelite-pwned").exists()


def test_index_picks_this_platform(store: ImageStore, tmp_path: Path) -> None:
    mine, other = build_image([BASE]), build_image([OTHER])
    entries = [dict(other.manifest.to_json(), platform={"os": "linux", "architecture": "s390x-none"}),
               dict(mine.manifest.to_json(), platform=host_platform()),
               dict(other.manifest.to_json(), platform={"os": "unknown", "architecture": "unknown"})]
    data = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    multi = BuiltImage(Descriptor(OCI_INDEX, digest_of(data), len(data)), {}, {**mine.blobs, digest_of(data): data})
    layout = write_layout(tmp_path / "l", {"docker.io/library/multi:1": multi})
    [record] = store.import_oci_layout(layout)
    assert record.digest == digest_of(data) and record.layer_dirs == (store.snapshots.path(digest_of(BASE)),)
    assert store.get(f"multi@{mine.manifest.digest}").id == record.id  # the platform manifest's digest too
    assert digest_of(OTHER) not in store.snapshots.diff_ids()


def test_tag_remove_and_gc(store: ImageStore, layout: Path) -> None:
    store.import_oci_layout(layout)
    app = store.get("example.com/team/app:2")
    store.tag("example.com/team/app:2", "localhost:5000/app")
    assert store.get("localhost:5000/app:latest").id == app.id
    with pytest.raises(InvalidImageName, match="digest"):
        store.tag("example.com/team/app:2", f"x@{app.digest}")
    removed, gc = store.remove("example.com/team/app:2")
    assert removed == ["example.com/team/app:2"] and gc.blobs == []  # still named localhost:5000/app
    removed, gc = store.remove("localhost:5000/app")
    assert removed == ["localhost:5000/app:latest"]
    assert gc.snapshots == [digest_of(APP)]  # the base layer stays: base:1 uses it
    assert app.digest in gc.blobs and app.id in gc.blobs
    assert not app.layer_dirs[1].exists() and app.layer_dirs[0].exists()
    assert [r.reference for r in store.list()] == ["docker.io/library/base:1"]
    removed, gc = store.remove(store.get("base:1").id)
    assert removed == ["docker.io/library/base:1"]
    assert stored_files(store) == EMPTY


def test_moving_a_name_leaves_the_old_image_untagged(store: ImageStore, tmp_path: Path) -> None:
    store.import_oci_layout(write_layout(tmp_path / "a", {"x:1": build_image([BASE])}))
    old = store.get("x:1")
    store.import_oci_layout(write_layout(tmp_path / "b", {"x:1": build_image([OTHER])}))
    assert store.get("x:1").id != old.id
    assert [r.reference for r in store.list()] == ["docker.io/library/x:1"]
    assert sorted(e.name for e, _ in store.images()) == ["", "docker.io/library/x:1"]
    assert store.get(old.id).reference == ""  # still there, found by ID
    dropped, gc = store.prune()
    assert dropped == [old.digest] and gc.snapshots == [digest_of(BASE)]


def test_gc_keeps_mounted_snapshots(store: ImageStore, layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.import_oci_layout(layout)
    path = store.get("base:1").layer_dirs[0]
    fake_mountinfo = f"300 29 0:55 / /run/ctr rw - overlay overlay rw,lowerdir={path}\n"
    monkeypatch.setattr(store_module, "mounted_text", lambda: fake_mountinfo)
    store.remove("base:1")
    _, gc = store.remove("example.com/team/app:2")
    assert gc.kept_mounted == [digest_of(BASE)] and path.exists()
    monkeypatch.setattr(store_module, "mounted_text", lambda: "")
    assert store.gc().snapshots == [digest_of(BASE)]


def test_get_unpacks_missing_snapshots_once(store: ImageStore, layout: Path) -> None:
    store.import_oci_layout(layout)
    for path in store.get("example.com/team/app:2").layer_dirs:
        shutil.rmtree(path)
    results, errors = [], []

    def get() -> None:
        try:
            results.append(store.get("example.com/team/app:2"))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=get) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 6
    assert (results[0].layer_dirs[1] / "app/main").read_text() == "main"
    assert [p.name for p in store.snapshots.dir.iterdir() if p.name.startswith(".")] == []


def test_docker_archive_round_trip(store: ImageStore, layout: Path, tmp_path: Path) -> None:
    store.import_oci_layout(layout)
    store.tag("base:1", "localhost:5000/base:v1")
    out = tmp_path / "save.tar"
    with open(out, "wb") as f:
        store.save(["base:1", "localhost:5000/base:v1", "example.com/team/app:2"], f)
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        base_entry = manifest[0]
        assert base_entry["RepoTags"] == ["base:1", "localhost:5000/base:v1"]
        assert manifest[1]["RepoTags"] == ["example.com/team/app:2"]
        layer = tar.extractfile(base_entry["Layers"][0]).read()  # type: ignore[union-attr]
        assert layer == BASE  # saved uncompressed, so its digest is its diff ID
        assert sorted(tar.getnames()) == sorted({*(x for m in manifest for x in m["Layers"]),
                                                 *(m["Config"] for m in manifest), "manifest.json"})
    fresh = ImageStore(tmp_path / "fresh")
    loaded = fresh.load_docker_archive(out)
    assert sorted(r.reference for r in loaded) == ["docker.io/library/base:1", "example.com/team/app:2",
                                                   "localhost:5000/base:v1"]
    for name in ("base:1", "example.com/team/app:2"):
        assert fresh.get(name).id == store.get(name).id  # the config, hence the image ID, survives
        assert fresh.get(name).config == store.get(name).config
    assert (fresh.get("example.com/team/app:2").layer_dirs[1] / "app/main").read_text() == "main"
    again = ImageStore(tmp_path / "again").load_docker_archive(out)
    assert sorted(r.digest for r in again) == sorted(r.digest for r in loaded)  # deterministic manifests


def docker_archive(path: Path, config: bytes, layers: list[tuple[str, bytes]], tags: list[str],
                   config_name: str | None = None) -> Path:
    config_name = config_name or f"{digest_of(config)[7:]}.json"
    entry = {"Config": config_name, "RepoTags": tags, "Layers": [n for n, _ in layers]}
    with tarfile.open(path, "w") as tar:
        for name, data in [(config_name, config), *layers, ("manifest.json", json.dumps([entry]).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_load_checks_configs_and_layers(store: ImageStore, tmp_path: Path) -> None:
    config = canonical_json({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [digest_of(BASE)]}})
    gz = docker_archive(tmp_path / "gz.tar", config, [("l/layer.tar", gzip.compress(BASE))], ["gz:1"])
    [record] = store.load_docker_archive(gz)  # compressed layers are accepted, as docker load does
    assert (record.layer_dirs[0] / "etc/group").exists() and record.id == digest_of(config)
    fresh = ImageStore(tmp_path / "fresh")
    wrong_name = docker_archive(tmp_path / "n.tar", config, [("l/layer.tar", BASE)], ["x:1"], "a" * 64 + ".json")
    with pytest.raises(DigestMismatch):
        fresh.load_docker_archive(wrong_name)
    wrong_layer = docker_archive(tmp_path / "w.tar", config, [("l/layer.tar", OTHER)], ["x:1"])
    with pytest.raises(DigestMismatch, match="diff ID"):
        fresh.load_docker_archive(wrong_layer)
    wrong_gz = docker_archive(tmp_path / "wg.tar", config, [("l/layer.tar", gzip.compress(OTHER))], ["x:1"])
    with pytest.raises(LayerError, match="diff ID"):
        fresh.load_docker_archive(wrong_gz)
    escaping = docker_archive(tmp_path / "e.tar", config, [("../layer.tar", BASE)], ["x:1"])
    with pytest.raises(ImageFormatError, match="leaves the archive"):
        fresh.load_docker_archive(escaping)
    assert stored_files(fresh) == EMPTY


def test_oci_archives(store: ImageStore, layout: Path, tmp_path: Path) -> None:
    archive = tmp_path / "oci.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(layout, arcname=".")
    assert len(store.load_docker_archive(archive)) == 2  # docker load takes OCI archives too
    assert len(ImageStore(tmp_path / "s2").import_oci_layout(archive)) == 2


def test_layout_naming(store: ImageStore, tmp_path: Path) -> None:
    image = build_image([BASE])
    layout = write_layout(tmp_path / "l", {"latest": image, "v2": build_image([OTHER])})
    records = store.import_oci_layout(layout)  # bare tags: nothing to name them by
    assert [r.reference for r in records] == ["", ""] and store.list() == []
    records = store.import_oci_layout(layout, "example.com/base")
    assert sorted(r.reference for r in records) == ["example.com/base:latest", "example.com/base:v2"]
    [record] = store.import_oci_layout(layout, "pinned:1", ref_name="v2")
    assert record.reference == "docker.io/library/pinned:1" and record.layer_dirs[0].name == digest_of(OTHER)[7:]
    with pytest.raises(ImageFormatError, match="choose one"):
        store.import_oci_layout(layout, "two:1")
    with pytest.raises(ImageFormatError, match="no image named"):
        store.import_oci_layout(layout, ref_name="nope")


@pytest.mark.parametrize(("annotations", "ref", "want"), [
    ([{ANNOTATION_IMAGE_NAME: "docker.io/library/a:1", ANNOTATION_REF_NAME: "1"}], None, [["docker.io/library/a:1"]]),
    ([{ANNOTATION_REF_NAME: "busybox:1.36"}], None, [["docker.io/library/busybox:1.36"]]),
    ([{ANNOTATION_REF_NAME: "latest"}], None, [[]]),
    ([{}], None, [[]]),
    ([{ANNOTATION_REF_NAME: "latest"}], "repo", [["docker.io/library/repo:latest"]]),
    ([{}, {ANNOTATION_REF_NAME: "v2"}], "localhost:5000/r", [["localhost:5000/r:latest"], ["localhost:5000/r:v2"]]),
    ([{ANNOTATION_REF_NAME: "x/y:3"}], "repo:9", [["docker.io/library/repo:9"]]),
])
def test_layout_names(annotations: list[dict[str, str]], ref: str | None, want: list[list[str]]) -> None:
    tops = [Descriptor("m", "sha256:" + str(i) * 64, 1, tuple(a.items())) for i, a in enumerate(annotations)]
    assert layout_names(tops, ref) == want


def test_docker_25_archives(store: ImageStore, tmp_path: Path) -> None:
    """Docker 25+ writes blobs/sha256/<hex> paths into manifest.json (beside an OCI layout)."""
    config = canonical_json({"os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest_of(BASE)]}})
    archive = docker_archive(tmp_path / "d25.tar", config, [(f"blobs/sha256/{digest_of(BASE)[7:]}", BASE)],
                             ["busybox:new"], f"blobs/sha256/{digest_of(config)[7:]}")
    [record] = store.load_docker_archive(archive)
    assert record.reference == "docker.io/library/busybox:new" and record.id == digest_of(config)


def _tag_many(root: str, prefix: str) -> None:
    s = ImageStore(Path(root))
    for i in range(15):
        s.tag("base:1", f"{prefix}/n:{i}")


def test_concurrent_writers_lose_no_names(store: ImageStore, layout: Path) -> None:
    import multiprocessing

    store.import_oci_layout(layout)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_tag_many, args=(str(store.root), f"p{i}")) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    names = {r.reference for r in store.list()}
    assert {f"docker.io/p{i}/n:{j}" for i in range(4) for j in range(15)} <= names

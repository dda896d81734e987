"""Layer unpacking: the pure per-entry plan, then real extraction (whiteouts, opaque directories,
links, ownership, hostile tarballs) into a directory overlayfs can use."""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from pathlib import Path

import pytest

from kubelite.images.layers import LayerError, Op, clean_name, plan
from kubelite.images.oci import digest_of
from kubelite.images.snapshots import Snapshots, unpack_layer
from kubelite.images.testimages import LayerBuilder

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="whiteouts, devices and ownership need root (CI runs as root)")


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(("name", "kind", "want"), [
    ("./etc/passwd", tarfile.REGTYPE, Op("file", "etc/passwd")),
    ("/etc//passwd", tarfile.REGTYPE, Op("file", "etc/passwd")),
    ("usr/bin/", tarfile.DIRTYPE, Op("dir", "usr/bin")),
    ("./", tarfile.DIRTYPE, Op("dir", "")),
    ("bin/sh", tarfile.SYMTYPE, Op("symlink", "bin/sh")),
    ("etc/.wh.group", tarfile.REGTYPE, Op("whiteout", "etc/group")),
    (".wh.www", tarfile.REGTYPE, Op("whiteout", "www")),
    ("var/lib/.wh..wh..opq", tarfile.REGTYPE, Op("opaque", "var/lib")),
    (".wh..wh.plnk", tarfile.DIRTYPE, Op("skip", ".wh..wh.plnk")),
    ("dev/null", tarfile.CHRTYPE, Op("device", "dev/null")),
    ("dev/sda", tarfile.BLKTYPE, Op("device", "dev/sda")),
    ("run/fifo", tarfile.FIFOTYPE, Op("fifo", "run/fifo")),
])
def test_plan(name: str, kind: bytes, want: Op) -> None:
    assert plan(member(name, kind), privileged=True) == want


def test_plan_hardlink_target_is_cleaned_and_contained() -> None:
    assert plan(member("b", tarfile.LNKTYPE, "./a"), privileged=True) == Op("hardlink", "b", "a")
    with pytest.raises(LayerError, match="escapes"):
        plan(member("b", tarfile.LNKTYPE, "../../etc/shadow"), privileged=True)


@pytest.mark.parametrize("name", ["../x", "a/../../x", "a/..", "./../etc/passwd"])
def test_plan_rejects_escaping_names(name: str) -> None:
    with pytest.raises(LayerError, match="escapes"):
        plan(member(name), privileged=True)


def test_plan_unprivileged() -> None:
    assert plan(member("dev/null", tarfile.CHRTYPE), privileged=False) == Op("skip", "dev/null")
    for name in ("etc/.wh.group", "etc/.wh..wh..opq"):
        with pytest.raises(LayerError, match="needs root"):
            plan(member(name), privileged=False)


def test_plan_rejects_replacing_the_root() -> None:
    with pytest.raises(LayerError, match="layer root"):
        plan(member("./", tarfile.REGTYPE), privileged=True)
    assert clean_name("./a/./b/") == "a/b"


def unpack(tmp_path: Path, layer: bytes, *, privileged: bool = ROOT, compress: bool = False) -> Path:
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(layer) if compress else layer)
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_layer(blob, dest, diff_id=digest_of(layer), privileged=privileged)
    return dest


def test_files_dirs_links_and_metadata(tmp_path: Path) -> None:
    layer = (LayerBuilder().dir("etc", 0o755, mtime=1000).file("etc/motd", "hi\n", 0o640, mtime=2000)
             .dir("ro", 0o555).file("ro/inside", "x").symlink("etc/link", "/etc/motd")
             .hardlink("etc/hard", "etc/motd").fifo("run/fifo")
             .file("x/attr", "a", xattrs={"user.note": "kept", "trusted.overlay.opaque": "y"})
             .file("implicit/parent/file", "p").build())
    dest = unpack(tmp_path, layer, compress=True)
    assert (dest / "etc/motd").read_text() == "hi\n"
    assert stat.S_IMODE(os.stat(dest / "etc/motd").st_mode) == 0o640
    assert os.stat(dest / "etc/motd").st_mtime == 2000
    assert os.stat(dest / "etc").st_mtime == 1000  # set after its children were written
    assert stat.S_IMODE(os.stat(dest / "ro").st_mode) == 0o555 and (dest / "ro/inside").read_text() == "x"
    assert os.readlink(dest / "etc/link") == "/etc/motd"
    assert os.stat(dest / "etc/hard").st_ino == os.stat(dest / "etc/motd").st_ino
    assert stat.S_ISFIFO(os.lstat(dest / "run/fifo").st_mode)
    assert os.getxattr(dest / "x/attr", "user.note") == b"kept"
    assert "trusted.overlay.opaque" not in os.listxattr(dest / "x/attr")  # a layer cannot steer overlayfs
    assert stat.S_IMODE(os.stat(dest / "implicit/parent").st_mode) == 0o755


@needs_root
def test_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    layer = (LayerBuilder().dir("etc").whiteout("etc/group").whiteout("www").dir("var")
             .opaque("var/lib").file("var/lib/new", "n").opaque("fresh").build())
    dest = unpack(tmp_path, layer)
    for path in ("etc/group", "www"):
        st = os.lstat(dest / path)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not (dest / "etc/.wh.group").exists()
    assert os.getxattr(dest / "var/lib", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(dest / "fresh", "trusted.overlay.opaque") == b"y"
    assert (dest / "var/lib/new").read_text() == "n"
    assert sorted(os.listdir(dest / "var/lib")) == ["new"]


@needs_root
def test_ownership_setuid_and_devices(tmp_path: Path) -> None:
    layer = (LayerBuilder().file("bin/su", "su", 0o4755, uid=0).file("home/u/f", "f", uid=1000, gid=1001)
             .device("dev/null", 1, 3).build())
    dest = unpack(tmp_path, layer)
    assert stat.S_IMODE(os.stat(dest / "bin/su").st_mode) == 0o4755
    st = os.stat(dest / "home/u/f")
    assert (st.st_uid, st.st_gid) == (1000, 1001)
    assert os.lstat(dest / "dev/null").st_rdev == os.makedev(1, 3)


def test_unprivileged_skips_devices(tmp_path: Path) -> None:
    dest = unpack(tmp_path, LayerBuilder().device("dev/null", 1, 3).file("a", "a").build(), privileged=False)
    assert not (dest / "dev/null").exists() and (dest / "a").exists()


def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    layer = (LayerBuilder().dir("p").file("p/child", "c").file("p", "now a file")
             .file("q", "file").dir("q").file("q/inside", "i").build())
    dest = unpack(tmp_path, layer)
    assert (dest / "p").read_text() == "now a file"
    assert (dest / "q/inside").read_text() == "i"


@pytest.mark.parametrize("build", [
    lambda b: b.symlink("evil", "/").file("evil/pwned", "x"),  # write through a symlink to /
    lambda b: b.symlink("evil", "../../../..").file("evil/pwned", "x"),
    lambda b: b.symlink("d", "/tmp").dir("d/sub"),
    lambda b: b.file("plain", "f").file("plain/under", "x"),  # through a non-directory
    lambda b: b.hardlink("hl", "/etc/passwd"),  # a link to something outside this layer
    lambda b: b.hardlink("hl", "../outside"),
    lambda b: b.symlink("evil", "/etc").hardlink("hl", "evil/passwd"),
    lambda b: b.file("../outside", "x"),
    lambda b: b.file("a/../../outside", "x"),
], ids=["symlink-root", "symlink-up", "dir-through-symlink", "through-file", "hardlink-abs",
        "hardlink-up", "hardlink-through-symlink", "dotdot", "nested-dotdot"])
def test_hostile_layers_are_refused(tmp_path: Path, build) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside"
    with pytest.raises(LayerError):
        unpack(tmp_path, build(LayerBuilder()).build())
    assert not outside.exists() and not Path("/pwned").exists() and not Path("/tmp/sub").exists()


def test_diff_id_and_corruption_checks(tmp_path: Path) -> None:
    layer = LayerBuilder().file("a", "a").build()
    blob = tmp_path / "blob"
    blob.write_bytes(layer)
    with pytest.raises(LayerError, match="does not match its diff ID"):
        unpack_layer(blob, tmp_path, diff_id=digest_of(b"other"), privileged=ROOT)
    blob.write_bytes(gzip.compress(layer)[:-20])
    with pytest.raises(LayerError, match="unpacking failed"):
        unpack_layer(blob, tmp_path, diff_id=None, privileged=ROOT)
    blob.write_bytes(b"")
    assert unpack_layer(blob, tmp_path, diff_id=digest_of(b""), privileged=ROOT) == 0


def test_snapshots_unpack_once_and_clean_up_failures(tmp_path: Path) -> None:
    snaps = Snapshots(tmp_path / "store")
    layer = LayerBuilder().file("hello", "world").build()
    blob = tmp_path / "blob"
    blob.write_bytes(layer)
    first = snaps.ensure(digest_of(layer), blob)
    assert first.created and (first.path / "hello").read_text() == "world"
    assert first.path.name == digest_of(layer).removeprefix("sha256:")
    assert not snaps.ensure(digest_of(layer), blob).created
    bad = LayerBuilder().symlink("x", "/").file("x/y", "z").build()
    blob.write_bytes(bad)
    with pytest.raises(LayerError):
        snaps.ensure(digest_of(bad), blob)
    assert snaps.diff_ids() == {digest_of(layer)}
    assert [p.name for p in snaps.dir.iterdir()] == [first.path.name]  # no temporary directory left
    assert snaps.remove(digest_of(layer)) and snaps.diff_ids() == set()
    assert list(snaps.dir.iterdir()) == []


@needs_root
def test_a_deleted_directory_recreated_in_the_same_layer_is_opaque(tmp_path: Path) -> None:
    dest = unpack(tmp_path, LayerBuilder().whiteout("cache").file("cache/new", "n").whiteout("d").dir("d").build())
    for path in ("cache", "d"):
        assert (dest / path).is_dir() and os.getxattr(dest / path, "trusted.overlay.opaque") == b"y"
    assert (dest / "cache/new").read_text() == "n"


@pytest.mark.parametrize("compressor", ["bzip2", "xz", "zstd"])
def test_other_compressions(tmp_path: Path, compressor: str) -> None:
    import shutil
    import subprocess

    if shutil.which(compressor) is None:
        pytest.skip(f"{compressor} is not installed")
    layer = LayerBuilder().file("a/b", "content" * 1000).build()
    blob = tmp_path / "blob"
    blob.write_bytes(subprocess.run([compressor, "-c"], input=layer, capture_output=True, check=True).stdout)
    dest = tmp_path / "dest"
    dest.mkdir()
    assert unpack_layer(blob, dest, diff_id=digest_of(layer), privileged=ROOT) == 1
    assert (dest / "a/b").read_text() == "content" * 1000

"""Compatibility with image tools nobody here wrote (root; Debian's skopeo and umoci): they read the
store (an OCI layout) and our `docker save` tarballs, and we import what they write, whiteouts
included."""

from __future__ import annotations

import filecmp
import os
import stat
import subprocess
from pathlib import Path

import pytest

from kubelite.images.store import ImageStore
from kubelite.images.testimages import HTTPD_REF, ensure_test_images
from tests.e2e.images_fixtures import overlay, require

pytestmark = pytest.mark.e2e


def sh(*args: str | Path) -> str:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ImageStore:
    require("skopeo", "umoci", "mount", "umount")
    store = ImageStore(tmp_path_factory.mktemp("images") / "store")
    ensure_test_images(store)
    return store


def test_skopeo_and_umoci_read_the_store(store: ImageStore, tmp_path: Path) -> None:
    assert HTTPD_REF in sh("umoci", "ls", "--layout", store.root).split()
    sh("skopeo", "copy", "-q", f"oci:{store.root}:{HTTPD_REF}", f"oci:{tmp_path / 'copy'}:httpd")
    sh("umoci", "unpack", "--image", f"{tmp_path / 'copy'}:httpd", tmp_path / "bundle")
    rootfs = tmp_path / "bundle/rootfs"
    assert (rootfs / "www/cgi-bin/id").exists()
    assert filecmp.cmp(rootfs / "bin/busybox", "/bin/busybox", shallow=False)


def test_our_docker_archive_reads_in_skopeo(store: ImageStore, tmp_path: Path) -> None:
    archive = tmp_path / "save.tar"
    with open(archive, "wb") as f:
        store.save(["busybox", HTTPD_REF], f)
    info = sh("skopeo", "inspect", "--raw", "--config", f"docker-archive:{archive}:kubelite/httpd:latest")
    assert '"80/tcp"' in info
    sh("skopeo", "copy", "-q", f"docker-archive:{archive}:kubelite/httpd:latest", f"oci:{tmp_path / 'oci'}:h")
    sh("umoci", "unpack", "--image", f"{tmp_path / 'oci'}:h", tmp_path / "bundle")
    assert (tmp_path / "bundle/rootfs/www/index.html").exists()
    # ... and back: the layout skopeo wrote imports, with the same image config (so the same ID).
    [record] = ImageStore(tmp_path / "again").import_oci_layout(tmp_path / "oci", "kubelite/httpd:back")
    assert record.config["config"] == store.get(HTTPD_REF).config["config"]


def test_umoci_layouts_import_with_whiteouts(store: ImageStore, tmp_path: Path) -> None:
    layout, base_rootfs = tmp_path / "layout", store.get("busybox").layer_dirs[0]
    sh("umoci", "init", "--layout", layout)
    sh("umoci", "new", "--image", f"{layout}:base")
    sh("umoci", "unpack", "--image", f"{layout}:base", tmp_path / "b1")
    sh("cp", "-a", f"{base_rootfs}/.", tmp_path / "b1/rootfs/")
    sh("umoci", "repack", "--image", f"{layout}:base", tmp_path / "b1")
    sh("umoci", "unpack", "--image", f"{layout}:base", tmp_path / "b2")
    (tmp_path / "b2/rootfs/etc/group").unlink()
    (tmp_path / "b2/rootfs/home").rmdir()
    (tmp_path / "b2/rootfs/etc/motd").write_text("from umoci\n")
    sh("umoci", "repack", "--image", f"{layout}:v2", tmp_path / "b2")
    sh("umoci", "config", "--image", f"{layout}:v2", "--config.cmd", "sh", "--tag", "v2")

    [image] = store.import_oci_layout(layout, "localhost:5000/umoci/bb", ref_name="v2")
    assert image.reference == "localhost:5000/umoci/bb:v2" and image.config["config"]["Cmd"] == ["sh"]
    assert len(image.layer_dirs) == 2
    top = image.layer_dirs[1]
    for hidden in ("etc/group", "home"):
        st = os.lstat(top / hidden)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, hidden
    with overlay(image.layer_dirs, tmp_path / "ovl") as root:
        assert (root / "etc/motd").read_text() == "from umoci\n"
        assert not (root / "etc/group").exists() and not (root / "home").exists()
        assert (root / "etc/passwd").exists() and (root / "bin/busybox").exists()

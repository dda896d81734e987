"""Images as a container runtime uses them (root): an overlay of an imported image's layer
directories shows the merged tree with deleted files hidden, and runc runs busybox from it."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from kubelite.images.api import ImageRecord
from kubelite.images.store import ImageStore
from kubelite.images.testimages import (
    BUSYBOX_REF,
    HTTPD_REF,
    INDEX_HTML,
    LayerBuilder,
    build_image,
    busybox_layer,
    ensure_test_images,
    httpd_layer,
    write_layout,
)
from tests.e2e.images_fixtures import overlay, require, runc_run

pytestmark = pytest.mark.e2e
EDITED_REF = "docker.io/kubelite/edited:1"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ImageStore:
    require("runc", "mount", "umount")
    store = ImageStore(tmp_path_factory.mktemp("images") / "store")
    started = time.perf_counter()
    ensure_test_images(store)
    print(f"\nbuild+import busybox and httpd: {time.perf_counter() - started:.3f}s, "
          f"layers unpacked in {store.last_unpack_seconds:.3f}s")
    # A third layer over httpd that deletes a file and a directory, and makes /www opaque.
    edits = (LayerBuilder().dir("etc").whiteout("etc/group").whiteout("home").file("etc/added", "added\n")
             .dir("www").opaque("www").file("www/only.txt", "only\n").build())
    edited = build_image([busybox_layer(), httpd_layer(), edits], cmd=["sh"])
    store.import_oci_layout(write_layout(tmp_path_factory.mktemp("layout"), {EDITED_REF: edited}))
    return store


def test_overlay_shows_the_merged_image(store: ImageStore, tmp_path: Path) -> None:
    image = store.get(EDITED_REF)
    assert len(image.layer_dirs) == 3
    with overlay(image.layer_dirs, tmp_path) as root:
        assert (root / "bin/busybox").is_file() and os.readlink(root / "bin/sh") == "/bin/busybox"
        assert (root / "etc/passwd").exists() and (root / "etc/added").read_text() == "added\n"
        assert not (root / "etc/group").exists() and not (root / "home").exists()  # whiteouts hide them
        assert sorted(os.listdir(root / "www")) == ["only.txt"]  # opaque: httpd's /www is gone
        assert "group" not in os.listdir(root / "etc")
        (root / "tmp/new").write_text("written")
        (root / "etc/passwd").unlink()
        assert (tmp_path / "upper/tmp/new").read_text() == "written"
        st = os.lstat(tmp_path / "upper/etc/passwd")  # overlayfs records the deletion in the upper dir
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert (image.layer_dirs[0] / "etc/passwd").exists()  # the snapshots themselves never change
    assert not (image.layer_dirs[-1] / "tmp").exists()


def test_httpd_image_merges_www(store: ImageStore, tmp_path: Path) -> None:
    image = store.get(HTTPD_REF)
    with overlay(image.layer_dirs, tmp_path) as root:
        assert (root / "www/index.html").read_text() == INDEX_HTML
        assert os.access(root / "www/cgi-bin/id", os.X_OK) and (root / "etc/group").exists()


def run_image(image: ImageRecord, args: list[str], tmp_path: Path, hostname: str) -> str:
    with overlay(image.layer_dirs, tmp_path / "ovl") as root:
        result = runc_run(root, args, tmp_path / "runc", hostname=hostname)
    assert result.returncode == 0, f"runc run failed ({result.returncode}): {result.stderr}"
    return result.stdout


def test_runc_runs_busybox_from_the_store(store: ImageStore, tmp_path: Path) -> None:
    image = store.get("busybox")
    assert image.reference == BUSYBOX_REF
    out = run_image(image, ["sh", "-c", "echo hello from $(hostname); id -un; ls /usr/bin/env"], tmp_path,
                    "images-e2e")
    assert out.splitlines() == ["hello from images-e2e", "root", "/usr/bin/env"]


def test_httpd_image_serves_its_cgi(store: ImageStore, tmp_path: Path) -> None:
    image = store.get(HTTPD_REF)
    script = ("ip link set lo up; httpd -p 127.0.0.1:80 -h /www; sleep 0.2; "
              "printf 'GET /cgi-bin/id HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 80")
    out = run_image(image, ["sh", "-c", script], tmp_path, "web-7")
    assert out.startswith("HTTP/1.") and " 200 " in out.splitlines()[0]
    assert out.rstrip().splitlines()[-1] == "web-7"

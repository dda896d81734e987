"""The busybox and httpd test images: reproducible OCI content built from busybox-static."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kubelite.images.store import ImageStore
from kubelite.images.testimages import (
    BUSYBOX,
    BUSYBOX_REF,
    CGI_ID,
    HTTPD_REF,
    build_test_images,
    ensure_test_images,
)

pytestmark = pytest.mark.skipif(not BUSYBOX.exists(), reason="needs busybox-static (apt-get install busybox-static)")


def test_images_are_reproducible() -> None:
    first, second = build_test_images(), build_test_images()
    assert {k: v.manifest for k, v in first.items()} == {k: v.manifest for k, v in second.items()}


def test_ensure_test_images(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    records = ensure_test_images(store)
    busybox, httpd = records[BUSYBOX_REF], records[HTTPD_REF]
    assert busybox.config["config"]["Cmd"] == ["sh"]
    assert httpd.config["config"]["Cmd"] == ["httpd", "-f", "-p", "80", "-h", "/www"]
    assert httpd.layer_dirs[0] == busybox.layer_dirs[0]  # the busybox layer is shared
    root = busybox.layer_dirs[0]
    assert os.readlink(root / "bin/sh") == "/bin/busybox"
    assert os.readlink(root / "usr/bin/env") == "/bin/busybox"
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
    assert (root / "etc/passwd").read_text().startswith("root:x:0:0:")
    cgi = httpd.layer_dirs[1] / "www/cgi-bin/id"
    assert cgi.read_text() == CGI_ID and os.access(cgi, os.X_OK)
    assert ensure_test_images(store)[BUSYBOX_REF] == busybox  # present: nothing rebuilt


def test_dynamic_busybox_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="busybox-static"):
        build_test_images(Path("/bin/ls"))
    with pytest.raises(FileNotFoundError, match="busybox-static"):
        build_test_images(tmp_path / "missing")

"""Helpers for the image store's e2e tests: host checks that fail (never skip) with what to
install, an overlay mount of an image's layer directories, and `runc run` of a rootfs under a
private runc state directory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

PACKAGES = {"runc": "runc", "mount": "mount", "umount": "mount", "skopeo": "skopeo", "umoci": "umoci",
            "busybox": "busybox-static"}


def require(*tools: str) -> None:
    if os.geteuid() != 0:
        pytest.fail("the image store e2e tests need root (overlay mounts, whiteout device nodes, runc); "
                    "CI runs them as root via scripts/test")
    missing = [t for t in tools if shutil.which(t) is None]
    if not Path("/bin/busybox").exists():
        missing.append("busybox")
    if missing:
        packages = " ".join(sorted({PACKAGES.get(t, t) for t in missing}))
        pytest.fail(f"missing {', '.join(missing)}: apt-get install -y {packages}")


@contextlib.contextmanager
def overlay(layer_dirs: Sequence[Path], scratch: Path) -> Iterator[Path]:
    """The layers (lowest first) merged under a fresh writable upper directory; unmounted on exit."""
    upper, work, merged = scratch / "upper", scratch / "work", scratch / "merged"
    for d in (upper, work, merged):
        d.mkdir(parents=True)
    lower = ":".join(str(d) for d in reversed(layer_dirs))  # overlayfs lists the top layer first
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True,
                   capture_output=True, text=True)
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    assert str(merged) not in Path("/proc/self/mountinfo").read_text()


def runc_run(rootfs: Path, args: list[str], scratch: Path, *, hostname: str,
             timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `args` in a container on `rootfs` (foreground; runc deletes the container when it ends)."""
    bundle, state = scratch / "bundle", scratch / "runc-root"
    bundle.mkdir(parents=True)
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["root"] = {"path": str(rootfs), "readonly": False}
    spec["process"].update(args=args, terminal=False)
    spec["hostname"] = hostname
    (bundle / "config.json").write_text(json.dumps(spec))
    container = f"kubelite-e2e-images-{os.getpid()}"
    try:
        return subprocess.run(["runc", "--root", str(state), "run", "--bundle", str(bundle), container],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    finally:
        subprocess.run(["runc", "--root", str(state), "delete", "--force", container], capture_output=True)

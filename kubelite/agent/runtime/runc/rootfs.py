"""Container root filesystems and the pod's other mounts.

A rootfs is an overlayfs mount of the image's unpacked layers (read-only, shared by every container
of the image) under a writable upper directory of the container's own:
`<container dir>/rootfs` = overlay(lowerdir = layers topmost first, upperdir = upper, workdir = work).
The pod's /dev/shm is a tmpfs in its directory, bind-mounted into each container.

Removal never deletes through a mount: every mount below a directory is detached (deepest first)
before the directory is removed, so a leftover mount can never make `rmtree` reach into an image
layer or a volume.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from kubelite.agent.runtime.runc import system

SHM_SIZE = "64m"


class RootfsError(Exception):
    pass


def mount_rootfs(layer_dirs: Sequence[Path], container_dir: Path) -> Path:
    if not layer_dirs:
        raise RootfsError("the image has no layers")
    target, upper, work = container_dir / "rootfs", container_dir / "upper", container_dir / "work"
    for path in (target, upper, work):
        path.mkdir(parents=True, exist_ok=True)
    if system.is_mountpoint(target):
        return target
    lower = ":".join(str(p) for p in reversed(layer_dirs))
    try:
        system.mount("overlay", target, "overlay", data=f"lowerdir={lower},upperdir={upper},workdir={work}")
    except OSError as exc:
        raise RootfsError(f"mounting the container's rootfs: {exc}") from None
    return target


def mount_shm(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if not system.is_mountpoint(path):
        system.mount("shm", path, "tmpfs", flags=system.MS_NOSUID | system.MS_NODEV | system.MS_NOEXEC,
                     data=f"mode=1777,size={SHM_SIZE}")


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first."""
    base = str(Path(path).resolve())
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = line.split()[4].replace("\\040", " ")
                if point == base or point.startswith(base + "/"):
                    found.append(point)
    except OSError:
        return []
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_all(path: Path) -> None:
    for point in mounts_under(path):
        system.umount(point)
    left = mounts_under(path)
    if left:
        raise RootfsError(f"still mounted under {path}: {', '.join(left)}")


def remove_tree(path: Path) -> None:
    """Detach every mount below `path`, then delete it."""
    if not path.exists():
        return
    unmount_all(path)
    shutil.rmtree(path, ignore_errors=True)


def read_text(rootfs: Path, relative: str, *, limit: int = 1 << 20) -> str | None:
    """A small file of the container's filesystem (e.g. etc/passwd), None if absent. Symlinks are
    not followed out of the rootfs: the file must resolve to a regular file inside it."""
    path = rootfs / relative
    try:
        if not path.resolve().is_relative_to(rootfs.resolve()) or not path.is_file():
            return None
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(limit)
    except OSError:
        return None

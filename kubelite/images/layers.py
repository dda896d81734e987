"""Unpacking one layer tarball into a directory that overlayfs can use as a lower layer.

Each tar member is first classified by the pure `plan` (what to create, where, or why the whole
layer is refused), then applied by `Unpacker`:
- names are cleaned ("./a", "/a" -> "a"); any ".." component rejects the layer, and no entry may
  be written through a symlink or a non-directory (parents are checked with lstat, files opened
  with O_NOFOLLOW|O_EXCL), so nothing lands outside the destination;
- whiteouts become overlayfs whiteouts: `.wh.name` -> a 0:0 character device `name`, an opaque
  marker `.wh..wh..opq` -> `trusted.overlay.opaque=y` on its directory (both need root);
- hard links must point at an entry this same layer already wrote;
- device nodes and ownership are applied only when privileged (root); otherwise devices are skipped
  and files belong to the caller, as with rootless Docker;
- `trusted.overlay.*` xattrs from the tarball are dropped: a layer must not steer overlayfs itself;
- directory modes and times are applied last, since writing children changes them.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_XATTR_PAX = "SCHILY.xattr."
_IGNORED_XATTR_ERRNOS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}

Kind = Literal["dir", "file", "symlink", "hardlink", "device", "fifo", "whiteout", "opaque", "skip"]


class LayerError(Exception):
    """A layer that cannot be unpacked safely or correctly; the whole layer is refused."""


@dataclass(frozen=True)
class Op:
    kind: Kind
    path: str  # cleaned, relative to the layer root ("" is the root itself)
    target: str = ""  # hardlink: cleaned path of the linked entry


def clean_name(name: str) -> str:
    """"./usr//bin/" -> "usr/bin"; raises LayerError for a name that climbs out with "..""."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"layer entry {name!r} escapes the layer root")
    if any("\0" in p for p in parts):
        raise LayerError(f"layer entry {name!r} contains a NUL byte")
    return "/".join(parts)


def plan(member: tarfile.TarInfo, *, privileged: bool) -> Op:
    """What one tar member becomes in the layer directory (pure)."""
    path = clean_name(member.name)
    parent, _, base = path.rpartition("/")
    if base == OPAQUE_MARKER:
        return _needs_root(Op("opaque", parent), privileged)
    if base.startswith(WHITEOUT_META_PREFIX):
        return Op("skip", path)  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): no meaning here
    if base.startswith(WHITEOUT_PREFIX):
        hidden = base[len(WHITEOUT_PREFIX):]
        if not hidden:
            raise LayerError(f"layer entry {member.name!r} is a whiteout of nothing")
        return _needs_root(Op("whiteout", f"{parent}/{hidden}" if parent else hidden), privileged)
    if not path and not member.isdir():
        raise LayerError(f"layer entry {member.name!r} would replace the layer root")
    return Op(_kind(member, privileged), path, clean_name(member.linkname) if member.islnk() else "")


def _kind(member: tarfile.TarInfo, privileged: bool) -> Kind:
    if member.isdir():
        return "dir"
    if member.isreg():
        return "file"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.ischr() or member.isblk():
        return "device" if privileged else "skip"
    if member.isfifo():
        return "fifo"
    return "skip"


def _needs_root(op: Op, privileged: bool) -> Op:
    if not privileged:
        raise LayerError(f"layer has an overlayfs whiteout ({op.kind} {op.path!r}): unpacking it needs "
                         "root (a 0:0 device node or a trusted.* xattr)")
    return op


def pax_xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    """The member's extended attributes (PAX SCHILY.xattr.*), overlayfs' own names removed."""
    out = {}
    for key, value in member.pax_headers.items():
        if key.startswith(_XATTR_PAX):
            name = key[len(_XATTR_PAX):]
            if not name.startswith("trusted.overlay."):
                out[name] = value.encode("utf-8", "surrogateescape")
    return out


class Unpacker:
    """Applies planned ops under `dest` (an empty directory this process owns)."""

    def __init__(self, dest: Path, *, privileged: bool) -> None:
        self.dest = dest
        self.privileged = privileged
        self._dirs: set[str] = {""}  # verified real directories (relative paths)
        self._dir_meta: dict[str, tarfile.TarInfo] = {}
        self.entries = 0

    def apply(self, op: Op, member: tarfile.TarInfo, data: IO[bytes] | None) -> None:
        if op.kind == "skip":
            return
        self.entries += 1
        if op.kind == "opaque":
            self._ensure_dir(op.path)
            os.setxattr(self._abs(op.path), OPAQUE_XATTR, b"y", follow_symlinks=False)
            return
        self._parent(op.path)
        if op.kind == "dir":
            self._make_dir(op.path, member)
            return
        self._clear(op.path)
        full = self._abs(op.path)
        if op.kind == "file":
            self._write_file(full, member, data)
        elif op.kind == "symlink":
            os.symlink(member.linkname, full)
        elif op.kind == "hardlink":
            self._link(op.target, full)
            return  # a hard link shares the target's inode and metadata
        elif op.kind == "whiteout":
            os.mknod(full, stat.S_IFCHR, os.makedev(0, 0))
        elif op.kind == "device":
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(full, kind | (member.mode & 0o7777), os.makedev(member.devmajor, member.devminor))
        elif op.kind == "fifo":
            os.mkfifo(full, member.mode & 0o7777)
        self._metadata(full, member, symlink=op.kind == "symlink", whiteout=op.kind == "whiteout")

    def finish(self) -> None:
        """Directory metadata, deepest first (so a read-only parent never blocks a child)."""
        for path in sorted(self._dir_meta, key=lambda p: -p.count("/") - bool(p)):
            self._metadata(self._abs(path), self._dir_meta[path], symlink=False, whiteout=False)

    def _abs(self, rel: str) -> str:
        return os.path.join(self.dest, rel) if rel else str(self.dest)

    def _parent(self, rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if parent not in self._dirs:
            self._ensure_dir(parent)

    def _ensure_dir(self, rel: str) -> None:
        """Every component of `rel` is a real directory (made 0755 when missing), never a symlink."""
        done = ""
        for part in rel.split("/") if rel else []:
            done = f"{done}/{part}" if done else part
            if done in self._dirs:
                continue
            try:
                st = os.lstat(self._abs(done))
            except FileNotFoundError:
                os.mkdir(self._abs(done), 0o755)
            else:
                if _is_whiteout(st):  # deleted from the lower layers, then re-created here
                    self._replace_whiteout(done, 0o755)
                elif not stat.S_ISDIR(st.st_mode):
                    raise LayerError(f"layer writes through {done!r}, which is not a directory (a symlink?)")
            self._dirs.add(done)

    def _make_dir(self, rel: str, member: tarfile.TarInfo) -> None:
        if rel:
            try:
                st = os.lstat(self._abs(rel))
            except FileNotFoundError:
                os.mkdir(self._abs(rel), 0o700)
            else:
                if _is_whiteout(st):
                    self._replace_whiteout(rel, 0o700)
                elif not stat.S_ISDIR(st.st_mode):
                    self._clear(rel)
                    os.mkdir(self._abs(rel), 0o700)
            self._dirs.add(rel)
        self._dir_meta[rel] = member

    def _replace_whiteout(self, rel: str, mode: int) -> None:
        """A directory where this layer put a whiteout: opaque, so the deleted lower one stays hidden."""
        os.unlink(self._abs(rel))
        os.mkdir(self._abs(rel), mode)
        os.setxattr(self._abs(rel), OPAQUE_XATTR, b"y", follow_symlinks=False)

    def _clear(self, rel: str) -> None:
        """Remove what a later entry replaces (a directory goes with its contents)."""
        full = self._abs(rel)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(full)
            prefix = rel + "/"
            self._dirs = {d for d in self._dirs if d != rel and not d.startswith(prefix)}
            self._dir_meta = {d: m for d, m in self._dir_meta.items() if d != rel and not d.startswith(prefix)}
        else:
            os.unlink(full)

    def _write_file(self, full: str, member: tarfile.TarInfo, data: IO[bytes] | None) -> None:
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            if data is not None:
                shutil.copyfileobj(data, out, 1 << 20)

    def _link(self, target: str, full: str) -> None:
        if not target:
            raise LayerError("hard link to the layer root")
        self._parent(target)
        source = self._abs(target)
        try:
            st = os.lstat(source)
        except FileNotFoundError:
            raise LayerError(f"hard link to {target!r}, which this layer does not contain") from None
        if stat.S_ISDIR(st.st_mode):
            raise LayerError(f"hard link to directory {target!r}")
        os.link(source, full, follow_symlinks=False)

    def _metadata(self, full: str, member: tarfile.TarInfo, *, symlink: bool, whiteout: bool) -> None:
        if self.privileged:
            os.lchown(full, member.uid, member.gid)  # before chmod: chown clears set-id bits
        if not symlink and not whiteout:
            os.chmod(full, member.mode & 0o7777)
        if not whiteout:
            self._set_xattrs(full, member)
        mtime = int(member.mtime * 1_000_000_000)
        os.utime(full, ns=(mtime, mtime), follow_symlinks=False)

    def _set_xattrs(self, full: str, member: tarfile.TarInfo) -> None:
        for name, value in pax_xattrs(member).items():
            try:
                os.setxattr(full, name, value, follow_symlinks=False)
            except OSError as e:
                if e.errno not in _IGNORED_XATTR_ERRNOS:
                    raise


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0

"""COPY and ADD: from sources and a destination to the entries of one layer.

`plan` decides everything before a byte is written, so the plan's `digest` (every entry's path,
type, mode, owner, link target and content hash; not mtimes, as Docker's cache ignores them) is
the cache key's content part, and `write` then streams the planned entries into a layer.

Docker's rules, as implemented here:
- sources are relative to the context root (or, with --from, to the other stage's or image's
  root); `..` cannot leave it; wildcards expand; a named symlink is followed, symlinks inside a
  copied directory are kept;
- a directory source copies its contents, not the directory itself;
- the destination is relative to WORKDIR unless absolute; it is a directory when it ends in `/`
  (or is `.`), when it already is one, or when several files are copied (several source
  arguments require the trailing `/`); otherwise it is the new file's path;
- symlinks in the destination path are followed inside the image (/bin -> usr/bin);
- files belong to 0:0 unless --chown=user[:group] (names from the image's /etc/passwd and
  /etc/group; a bare uid is also the gid, a bare name takes its primary group); --chmod sets the
  mode of everything copied; missing parent directories are created 0755; existing parents are
  written with their current metadata, so the layer never changes them;
- ADD extracts a local tar archive (plain, gzip, bzip2, xz) into the destination directory; URLs
  are refused (no network in the build).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, replace

from kubelite.images.build.rootview import RootView, Tree, clean_rel, glob, has_wildcards, join, resolve
from kubelite.images.build.tarlayer import LayerWriter
from kubelite.images.layers import LayerError, clean_name


class CopyError(ValueError):
    pass


@dataclass(frozen=True)
class Entry:
    path: str  # in the layer (clean, relative)
    kind: str  # dir | file | symlink | fifo | archive | inline
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    source: str = ""  # path in the source tree (file, archive)
    link: str = ""
    content: str = ""  # sha256 of the data (file, archive, inline)
    data: bytes = b""  # inline (heredoc) files


@dataclass(frozen=True)
class Request:
    sources: Sequence[str]
    dest: str
    workdir: str = "/"
    chown: str = ""
    chmod: str = ""
    add: bool = False
    inline: Sequence[tuple[str, bytes]] = ()  # heredoc files: (name, content)
    from_context: bool = True  # sources relative to the context (else: another root)


@dataclass(frozen=True)
class Plan:
    entries: tuple[Entry, ...]
    digest: str


def plan(req: Request, source: Tree, dest_view: RootView) -> Plan:
    if req.add:
        for src in req.sources:
            if "://" in src or src.startswith("git@"):
                raise CopyError(f"ADD {src}: downloading is not supported (the build has no network); "
                                "download it into the build context and COPY it")
    owner = chown_ids(req.chown, dest_view) if req.chown else (0, 0)
    mode = parse_chmod(req.chmod) if req.chmod else None
    items = [(src, rel) for src in req.sources for rel in _expand(src, source, req.from_context)]
    count = len(req.sources) + len(req.inline)
    dest = req.dest if req.dest.startswith("/") else posixpath.join(req.workdir or "/", req.dest)
    dest_rel = resolve(dest_view, clean_rel(dest))
    existing = dest_view.lstat(dest_rel)
    as_dir = (req.dest.endswith(("/", "/.")) or req.dest == "." or len(items) + len(req.inline) > 1
              or (existing is not None and stat.S_ISDIR(existing.st_mode)))
    if count > 1 and not req.dest.endswith("/"):
        raise CopyError("When using COPY with more than one source file, the destination must be a directory "
                        "and end with a /")
    entries: list[Entry] = []
    for src, rel in items:
        entries += _source_entries(source, rel, src, dest_rel, as_dir=as_dir, add=req.add, exists=existing is not None)
    for name, data in req.inline:
        path = join(dest_rel, name) if as_dir else dest_rel
        entries.append(Entry(path, "inline", 0o644, content=_sha(data), data=data))
    entries = [_owned(e, owner, mode) for e in entries]
    entries = _with_parents(entries, dest_view, dest_rel if as_dir else posixpath.dirname(dest_rel), owner)
    return Plan(tuple(entries), _digest(entries))


def mkdir_plan(path: str, view: RootView, owner: tuple[int, int]) -> Plan:
    """WORKDIR's `mkdir -p`: the directory and its missing parents, owned by `owner`."""
    entries = _with_parents([Entry(path, "dir", 0o755, *owner)], view, path, owner)
    return Plan(tuple(entries), _digest(entries))


def _expand(src: str, tree: Tree, from_context: bool) -> list[str]:
    normalized = posixpath.normpath("/" + src.lstrip("/")) if not from_context else posixpath.normpath(src.lstrip("/") or ".")
    if from_context and (normalized == ".." or normalized.startswith("../")):
        raise CopyError(f"{src}: forbidden path outside the build context")
    rel = clean_rel(normalized)
    if has_wildcards(rel):
        found = glob(tree, rel)
        if not found:
            raise CopyError(f"{src}: no files match this pattern" + _where(from_context))
        return found
    resolved = resolve(tree, rel)
    if tree.lstat(resolved) is None:
        raise CopyError(f"{src}: file not found" + _where(from_context))
    return [rel]


def _where(from_context: bool) -> str:
    return " in the build context (or excluded by .dockerignore)" if from_context else " in the source stage or image"


def _source_entries(tree: Tree, rel: str, src: str, dest: str, *, as_dir: bool, add: bool,
                    exists: bool) -> list[Entry]:
    real = resolve(tree, rel)
    st = tree.lstat(real)
    assert st is not None
    if stat.S_ISDIR(st.st_mode):  # its contents; a new destination directory takes its mode
        top = [] if exists or not dest else [_entry(dest, st, tree, real)]
        return top + _walk(tree, real, dest)
    if add and stat.S_ISREG(st.st_mode) and is_archive(tree, real):
        return [Entry(dest, "archive", 0o755, source=real, content=_hash_file(tree, real))]
    target = join(dest, posixpath.basename(rel) or posixpath.basename(real)) if as_dir else dest
    if not target:
        raise CopyError(f"{src}: cannot copy a file onto the image's root directory")
    return [_entry(target, st, tree, real)]


def _walk(tree: Tree, rel: str, dest: str) -> list[Entry]:
    out = []
    for name in tree.listdir(rel):
        child = join(rel, name)
        st = tree.lstat(child)
        if st is None:
            continue
        out.append(_entry(join(dest, name), st, tree, child))
        if stat.S_ISDIR(st.st_mode):
            out += _walk(tree, child, join(dest, name))
    return out


def _entry(path: str, st: os.stat_result, tree: Tree, rel: str) -> Entry:
    mode, mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        return Entry(path, "dir", mode, mtime=mtime)
    if stat.S_ISLNK(st.st_mode):
        return Entry(path, "symlink", mode, mtime=mtime, link=tree.readlink(rel))
    if stat.S_ISFIFO(st.st_mode):
        return Entry(path, "fifo", mode, mtime=mtime)
    if stat.S_ISREG(st.st_mode):
        return Entry(path, "file", mode, mtime=mtime, source=rel, content=_hash_file(tree, rel))
    return Entry(path, "skip")  # devices and sockets are not copied


def _owned(entry: Entry, owner: tuple[int, int], mode: int | None) -> Entry:
    keep_mode = mode is None or entry.kind in ("symlink", "archive")
    return replace(entry, uid=owner[0], gid=owner[1], mode=entry.mode if keep_mode or mode is None else mode)


def _with_parents(entries: list[Entry], view: RootView, dest_dir: str, owner: tuple[int, int]) -> list[Entry]:
    """Every parent directory of the entries, created (0755) or as it is in the image; sorted so
    that a directory comes before what it holds; a later entry for the same path wins."""
    by_path: dict[tuple[str, bool], Entry] = {}  # (path, is an archive to extract there)
    for entry in entries:
        if entry.kind != "skip":
            by_path[(entry.path, entry.kind == "archive")] = entry
    for entry in list(by_path.values()):
        parent = entry.path if entry.kind == "archive" else posixpath.dirname(entry.path)
        while parent and (parent, False) not in by_path:
            st = view.lstat(parent)
            if st is not None and stat.S_ISDIR(st.st_mode):
                by_path[(parent, False)] = Entry(parent, "dir", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                                 int(st.st_mtime))
            else:
                uid, gid = owner if _within(parent, dest_dir) or _within(dest_dir, parent) else (0, 0)
                by_path[(parent, False)] = Entry(parent, "dir", 0o755, uid, gid)
            parent = posixpath.dirname(parent)
    return [by_path[k] for k in sorted(by_path, key=lambda k: (k[0].split("/"), k[1]))]


def _within(path: str, directory: str) -> bool:
    return not directory or path == directory or path.startswith(directory + "/")


def _digest(entries: list[Entry]) -> str:
    hasher = hashlib.sha256()
    for e in entries:
        hasher.update(json.dumps([e.path, e.kind, e.mode, e.uid, e.gid, e.link, e.content]).encode() + b"\n")
    return "sha256:" + hasher.hexdigest()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hash_file(tree: Tree, rel: str) -> str:
    hasher = hashlib.sha256()
    with tree.open(rel) as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def is_archive(tree: Tree, rel: str) -> bool:
    """A tar archive, plain or compressed (what ADD extracts); other files are copied as they are."""
    try:
        with tree.open(rel) as f, tarfile.open(fileobj=f, mode="r:*") as archive:
            return archive.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


# ----- owners and modes ----------------------------------------------------------------------------


def chown_ids(spec: str, view: RootView) -> tuple[int, int]:
    user, _, group = spec.partition(":")
    if not user:
        raise CopyError(f"--chown={spec}: give a user (user[:group])")
    if user.isdigit():
        uid, gid = int(user), int(user)
    else:
        row = _row(view.read_text("/etc/passwd"), user)
        if row is None or len(row) < 4 or not row[2].isdigit():
            raise CopyError(f"--chown={spec}: unable to find user {user}: no matching entries in the image's /etc/passwd")
        uid, gid = int(row[2]), int(row[3]) if row[3].isdigit() else 0
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            grow = _row(view.read_text("/etc/group"), group)
            if grow is None or len(grow) < 3 or not grow[2].isdigit():
                raise CopyError(f"--chown={spec}: unable to find group {group}: no matching entries in the image's "
                                "/etc/group")
            gid = int(grow[2])
    return uid, gid


def _row(text: str | None, name: str) -> list[str] | None:
    for line in (text or "").splitlines():
        row = line.split(":")
        if row and row[0] == name:
            return row
    return None


def parse_chmod(text: str) -> int:
    if not text or any(c not in "01234567" for c in text) or int(text, 8) > 0o7777:
        raise CopyError(f"--chmod={text}: give an octal mode such as 755 or 0644")
    return int(text, 8)


# ----- writing -------------------------------------------------------------------------------------


def write(plan_: Plan, source: Tree, writer: LayerWriter) -> None:
    for e in plan_.entries:
        if e.kind == "archive":
            _extract(source, e, writer)
            continue
        info = tarfile.TarInfo(e.path)
        info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, e.mtime
        if e.kind == "dir":
            info.type = tarfile.DIRTYPE
        elif e.kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, e.link
        elif e.kind == "fifo":
            info.type = tarfile.FIFOTYPE
        elif e.kind == "inline":
            info.size = len(e.data)
            writer.add(info, io.BytesIO(e.data))
            continue
        if e.kind == "file":
            with source.open(e.source) as data:
                info.size = os.fstat(data.fileno()).st_size
                writer.add(info, data)
        else:
            writer.add(info)


def _extract(source: Tree, entry: Entry, writer: LayerWriter) -> None:
    with source.open(entry.source) as raw, tarfile.open(fileobj=raw, mode="r|*") as archive:
        for member in archive:
            try:
                name = clean_name(member.name)
            except LayerError as e:
                raise CopyError(f"ADD {entry.source}: {e}") from None
            if not name:
                continue
            member.name = join(entry.path, name)
            if member.islnk():
                member.linkname = join(entry.path, clean_name(member.linkname))
            if entry.uid or entry.gid:
                member.uid, member.gid = entry.uid, entry.gid
            writer.add(member, archive.extractfile(member) if member.isreg() else None)

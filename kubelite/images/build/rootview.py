"""Read-only file trees the build copies from and resolves paths in.

A `Tree` answers lstat/listdir/readlink/open for clean relative slash paths ("" is the root); two
kinds exist: the build context (`context.ContextTree`, filtered by .dockerignore) and `RootView`,
an image's or stage's root filesystem seen through its stack of layer directories exactly as
overlayfs would merge them (a 0:0 character device hides the name below it, an opaque directory
hides everything below it, an upper non-directory hides a lower directory), without mounting
anything. `resolve` follows symlinks the way a container sees them: absolute targets restart at
the tree's root and `..` never climbs above it (containerd's fs.RootPath). `glob` expands
Dockerfile source patterns (`*`, `?`, `[...]`, never across `/`).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

OPAQUE_XATTR = "trusted.overlay.opaque"
MAX_LINKS = 255
_WILDCARD = re.compile(r"[*?\[]")


class TreeError(ValueError):
    pass


class Tree(Protocol):
    def lstat(self, rel: str) -> os.stat_result | None: ...
    def listdir(self, rel: str) -> list[str]: ...
    def readlink(self, rel: str) -> str: ...
    def open(self, rel: str) -> BinaryIO: ...


def join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def clean_rel(path: str) -> str:
    """"/a/./b/../c/" -> "a/c"; `..` above the root stays at the root."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def resolve(tree: Tree, path: str, *, follow_final: bool = True) -> str:
    """`path` with every symlink component followed inside the tree (missing components stay)."""
    todo = [p for p in clean_rel(path).split("/") if p]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        current = "/".join([*done, part])
        st = tree.lstat(current)
        if st is None or not stat.S_ISLNK(st.st_mode) or (not todo and not follow_final):
            done.append(part)
            continue
        links += 1
        if links > MAX_LINKS:
            raise TreeError(f"too many levels of symbolic links resolving {path!r}")
        target = tree.readlink(current)
        base = [] if target.startswith("/") else done
        todo = [p for p in clean_rel("/".join([*base, target])).split("/") if p] + todo
        done = []
    return "/".join(done)


def translate_glob(component: str) -> re.Pattern[str]:
    """One path component of a Go filepath.Match pattern as a regex."""
    out, i = [], 0
    while i < len(component):
        ch = component[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < len(component):
            i += 1
            out.append(re.escape(component[i]))
        elif ch == "[":
            end = component.find("]", i + 2)
            if end < 0:
                raise TreeError(f"syntax error in pattern {component!r}")
            body = component[i + 1:end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith(("^", "!")) else body) + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def has_wildcards(path: str) -> bool:
    return bool(_WILDCARD.search(path))


def glob(tree: Tree, pattern: str) -> list[str]:
    """The paths matching a clean relative pattern, sorted (directories in the middle of the
    pattern are followed through symlinks)."""
    found = [""]
    for component in [p for p in pattern.split("/") if p]:
        following = []
        for base in found:
            if not has_wildcards(component):
                candidate = join(base, component)
                if tree.lstat(resolve(tree, candidate, follow_final=False)) is not None:
                    following.append(candidate)
                continue
            regex = translate_glob(component)
            directory = resolve(tree, base) if base else ""
            st = tree.lstat(directory) if directory else None
            if directory and (st is None or not stat.S_ISDIR(st.st_mode)):
                continue
            following += [join(base, n) for n in sorted(tree.listdir(directory)) if regex.match(n)]
        found = following
    return sorted(set(found) - {""})


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:  # absent, or not readable without root (unprivileged snapshots have none)
        return False


class FileTree:
    """The reading half of a tree whose entries are real files at `_path(rel)`."""

    def _path(self, rel: str) -> Path:
        raise NotImplementedError

    def readlink(self, rel: str) -> str:
        return os.readlink(self._path(rel))

    def open(self, rel: str) -> BinaryIO:
        return open(self._path(rel), "rb")

    def real_path(self, rel: str) -> Path:
        return self._path(rel)


class RootView(FileTree):
    """The merged root filesystem of layer directories (lowest first), read without mounting."""

    def __init__(self, layer_dirs: Sequence[Path]) -> None:
        self.top_first = [Path(d) for d in reversed(layer_dirs)]
        self._cache: dict[str, list[Path]] = {}

    def locate(self, rel: str) -> list[Path]:
        """Where `rel` lives, topmost first: one path for a non-directory, every contributing
        layer's directory for a directory, [] when absent or deleted."""
        if rel in self._cache:
            return self._cache[rel]
        if not rel:
            found = []
            for layer in self.top_first:
                found.append(layer)
                if is_opaque(layer):
                    break
        else:
            parent, _, name = rel.rpartition("/")
            parents = self.locate(parent)
            st = _lstat(parents[0]) if parents else None
            # never look through a non-directory (a symlink would lead out of the layers)
            found = self._child(parents, name) if st is not None and stat.S_ISDIR(st.st_mode) else []
        self._cache[rel] = found
        return found

    @staticmethod
    def _child(parents: list[Path], name: str) -> list[Path]:
        found: list[Path] = []
        for directory in parents:
            candidate = directory / name
            st = _lstat(candidate)
            if st is None:
                continue
            if is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                return found or ([] if is_whiteout(st) else [candidate])
            found.append(candidate)
            if is_opaque(candidate):
                break
        return found

    def lstat(self, rel: str) -> os.stat_result | None:
        paths = self.locate(rel)
        return _lstat(paths[0]) if paths else None

    def listdir(self, rel: str) -> list[str]:
        seen: set[str] = set()
        visible = []
        for directory in self.locate(rel):
            try:
                names = os.listdir(directory)
            except NotADirectoryError:
                return []
            for name in names:
                if name in seen:
                    continue
                seen.add(name)
                st = _lstat(directory / name)
                if st is not None and not is_whiteout(st):
                    visible.append(name)
        return sorted(visible)

    def _path(self, rel: str) -> Path:
        paths = self.locate(rel)
        if not paths:
            raise FileNotFoundError(f"/{rel}")
        return paths[0]

    def read_text(self, path: str) -> str | None:
        """A small file (e.g. /etc/passwd), symlinks followed inside the root; None if absent."""
        rel = resolve(self, path)
        st = self.lstat(rel)
        if st is None or not stat.S_ISREG(st.st_mode):
            return None
        with self.open(rel) as f:
            return f.read(1 << 20).decode("utf-8", "replace")

    def exists(self, path: str) -> bool:
        return self.lstat(clean_rel(path)) is not None

"""The build context: a directory whose files COPY and ADD read, filtered by its .dockerignore.

`ContextTree` is a `rootview.Tree` over the context directory: a path excluded by .dockerignore
does not exist for COPY (an excluded directory stays visible only when a `!` pattern could
re-include something below it; then each child is judged on its own). Symlinks resolve inside the
context, never outside it. `load` reads the Dockerfile (`-f` may point anywhere, `-f -` is stdin;
by default `<context>/Dockerfile`) and the context's .dockerignore (or `<Dockerfile>.dockerignore`
next to a custom Dockerfile, as Docker prefers it).
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from kubelite.images.build.dockerignore import Matcher, matcher_from_text
from kubelite.images.build.rootview import FileTree


class ContextError(ValueError):
    pass


class ContextTree(FileTree):
    def __init__(self, root: Path, matcher: Matcher) -> None:
        self.root = root
        self.matcher = matcher

    def _path(self, rel: str) -> Path:
        return self.root / rel if rel else self.root

    def visible(self, rel: str, st: os.stat_result) -> bool:
        if not rel or not self.matcher.excluded(rel):
            return True
        return stat.S_ISDIR(st.st_mode) and self.matcher.may_include_below(rel)

    def lstat(self, rel: str) -> os.stat_result | None:
        if not self._real_dirs(rel.rpartition("/")[0]):
            return None  # never look through a symlink: it could lead out of the context
        try:
            st = os.lstat(self._path(rel))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st if self.visible(rel, st) else None

    def _real_dirs(self, rel: str) -> bool:
        """Whether every component of `rel` is a directory, none a symlink."""
        path = self.root
        for part in rel.split("/") if rel else []:
            path = path / part
            try:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    return False
            except OSError:
                return False
        return True

    def listdir(self, rel: str) -> list[str]:
        names = []
        for name in sorted(os.listdir(self._path(rel))):
            child = f"{rel}/{name}" if rel else name
            if self.lstat(child) is not None:
                names.append(name)
        return names


@dataclass(frozen=True)
class LoadedContext:
    tree: ContextTree
    dockerfile_text: str
    dockerfile_name: str  # for error messages: "Dockerfile", "build/app.Dockerfile"
    ignore_file: Path | None


def load(context_dir: Path, dockerfile: str | None = None) -> LoadedContext:
    if not context_dir.is_dir():
        raise ContextError(f"build context {context_dir} is not a directory (give the directory that holds "
                           "your Dockerfile and the files it copies)")
    root = context_dir.resolve()
    if dockerfile == "-":
        text, name, path = sys.stdin.read(), "Dockerfile", None
    else:
        path = Path(dockerfile) if dockerfile else root / "Dockerfile"
        if not path.is_file():
            raise ContextError(f"no Dockerfile at {path} (write one, or name it with -f)")
        text, name = path.read_text(encoding="utf-8", errors="replace"), _display_name(path, root)
    ignore = _ignore_file(root, path)
    matcher = matcher_from_text(ignore.read_text(errors="replace")) if ignore else Matcher([])
    return LoadedContext(ContextTree(root, matcher), text, name, ignore)


def _display_name(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def _ignore_file(root: Path, dockerfile: Path | None) -> Path | None:
    if dockerfile is not None:
        specific = dockerfile.with_name(dockerfile.name + ".dockerignore")
        if specific.is_file():
            return specific
    common = root / ".dockerignore"
    return common if common.is_file() else None

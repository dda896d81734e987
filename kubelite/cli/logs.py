"""`kubelite logs [COMPONENT] [-f] [-n N]`: the cluster daemons' own logs (not pods': that is
`kubelite kubectl -- logs POD`).

Every daemon of `kubelite start` writes `<data>/logs/<name>.log` (kubelite/cluster/daemon.py), so a
component is any `*.log` there, named by its file stem: `server`, `node-kubelite-1`, ... Without a
COMPONENT all of them are printed, each under a `==> name (path, size) <==` header, as `minikube logs`
prints every component and `tail` several files; `--list` prints only the names, sizes and paths.

Following (`-f`) polls the paths (no inotify dependency): new bytes are printed as they arrive; a
file replaced under the same path (rotation) is finished, then the new one is read from its start;
a file that shrank (truncation) is read again from its start, as `tail -F` does. With several
components the header is repeated whenever the output switches to another one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kubelite.cli.common import add_data_dir

DEFAULT_LINES = 60  # minikube logs' default length
POLL_INTERVAL = 0.2
_BLOCK = 64 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)
    parser.add_argument("component", nargs="?", help="a daemon: server or a node (default: all of them)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    parser.add_argument("-n", "--tail", type=int, default=DEFAULT_LINES, metavar="N",
                        help="lines from the end of each log, -1 for all (default: %(default)s)")
    parser.add_argument("--list", action="store_true", help="only list the components and their log files")


def run(args: argparse.Namespace) -> int:
    found = components(args.data_dir)
    if not found:
        return _error(f"no daemon logs in {args.data_dir / 'logs'}; start a cluster with `kubelite start`, "
                      "or pass the --data-dir it was started with")
    if args.component is not None:
        if args.component not in found:
            return _error(f"unknown component {args.component!r}; known: {', '.join(found)}")
        found = {args.component: found[args.component]}
    if args.list:
        _print_list(found)
        return 0
    followed = _print_tails(found, lines=args.tail, follow=args.follow)
    if args.follow:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how following ends
            _follow(followed, data_dir=args.data_dir, every_component=args.component is None,
                    last=next(reversed(followed)))
    return 0


def _print_tails(found: dict[str, Path], *, lines: int, follow: bool) -> dict[str, _Followed]:
    """Print each log's last lines (under a header when there are several); return the files open
    where the printing stopped, so following neither skips nor repeats a line."""
    out = sys.stdout.buffer
    several = len(found) > 1
    followed = {name: _Followed(path) for name, path in found.items()}
    for name, entry in followed.items():
        if several:
            out.write(header(name, entry.path).encode())
        entry.open()
        text = tail_bytes(entry.handle, lines) if entry.handle is not None else b""
        out.write(text if not text or text.endswith(b"\n") or follow else text + b"\n")
        if several:
            out.write(b"\n")
        if not follow:
            entry.close()
    out.flush()
    return followed


def components(data_dir: Path) -> dict[str, Path]:
    """Log files by component name: the server first, then the others by name."""
    logs = sorted((data_dir / "logs").glob("*.log"))
    ordered = sorted(logs, key=lambda p: (p.stem != "server", p.stem))
    return {path.stem: path for path in ordered}


def header(name: str, path: Path) -> str:
    return f"==> {name} ({path}, {_size(path)}) <==\n"


def _size(path: Path) -> str:
    try:
        return human_size(path.stat().st_size)
    except OSError:
        return "gone"


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def tail_bytes(f: BinaryIO, lines: int) -> bytes:
    """The last `lines` lines of an open file up to its current position (all for a negative
    count), read backwards in blocks so a long-lived server log costs only what is printed. The
    position is left where it was."""
    end = f.tell()
    if lines < 0:
        f.seek(0)
        data = f.read(end)
    else:
        data, position = b"", end
        # one more newline than lines wanted, since the last line normally ends with one
        while position > 0 and data.count(b"\n") <= lines:
            step = min(_BLOCK, position)
            position -= step
            f.seek(position)
            data = f.read(step) + data
    f.seek(end)
    return last_lines(data, lines)


def last_lines(data: bytes, lines: int) -> bytes:
    """The last `lines` lines of data; all of it for a negative count."""
    if lines < 0:
        return data
    if lines == 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


# ----- following --------------------------------------------------------------------------------


@dataclass
class _Followed:
    """One followed path: the file open at the end of what was printed."""

    path: Path
    handle: BinaryIO | None = None
    inode: int | None = None
    # the first open starts at the end (the tail was printed already); a file found later, or the
    # new file after a rotation, is read from its start
    at_end: bool = True

    def open(self) -> None:
        try:
            self.handle = self.path.open("rb")
        except OSError:
            self.handle = None
            return
        self.inode = os.fstat(self.handle.fileno()).st_ino
        if self.at_end:
            self.handle.seek(0, os.SEEK_END)
        self.at_end = False  # any later (re)open is a new file: read it whole

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def change(position: int, *, size: int, inode: int | None, path_inode: int | None) -> str:
    """What happened to a followed file since the last poll: "rotated" (the path names another
    file, or none), "truncated" (shorter than what was read), else "same"."""
    if path_inode is None or path_inode != inode:
        return "rotated"
    if size < position:
        return "truncated"
    return "same"


def _poll(followed: _Followed) -> tuple[bytes, str]:
    if followed.handle is None:
        followed.open()
        if followed.handle is None:
            return b"", "same"
    handle = followed.handle
    assert handle is not None
    data = handle.read()
    try:
        path_inode: int | None = followed.path.stat().st_ino
    except OSError:
        path_inode = None
    what = change(handle.tell(), size=os.fstat(handle.fileno()).st_size, inode=followed.inode,
                  path_inode=path_inode)
    if what == "truncated":
        handle.seek(0)
        data += handle.read()
    elif what == "rotated" and path_inode is not None:
        followed.close()  # whatever the old file had is in `data`; the new one is read next poll
    return data, what


def _follow(followed: dict[str, _Followed], *, data_dir: Path, every_component: bool, last: str) -> None:
    out = sys.stdout.buffer
    while True:
        if every_component:  # nodes added by a later `kubelite start` appear as new log files
            for name, path in components(data_dir).items():
                followed.setdefault(name, _Followed(path, at_end=False))
        for name, entry in followed.items():
            data, what = _poll(entry)
            if what == "truncated":
                print(f"kubelite logs: {entry.path}: file truncated", file=sys.stderr, flush=True)
            if not data:
                continue
            if name != last and len(followed) > 1:
                out.write(f"\n==> {name} <==\n".encode())
                last = name
            out.write(data)
            out.flush()
        time.sleep(POLL_INTERVAL)


def _print_list(found: dict[str, Path]) -> None:
    width = max(len("COMPONENT"), *(len(name) for name in found))
    print(f"{'COMPONENT':<{width}}  {'SIZE':>9}  LOG")
    for name, path in found.items():
        print(f"{name:<{width}}  {_size(path):>9}  {path}")


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1

"""`kubelite status`: which daemons run, and where their logs are."""

from __future__ import annotations

import argparse

from kubelite.cli.common import add_data_dir
from kubelite.cli.stop import DAEMONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)


def run(args: argparse.Namespace) -> int:
    from kubelite.cluster.daemon import Daemon

    known = [Daemon(name, args.data_dir) for name in DAEMONS]
    present = [d for d in known if d.pid_file.exists() or d.name == "server"]
    for daemon in present:
        pid = daemon.pid()
        state = f"Running (pid {pid})" if pid else "Stopped"
        print(f"{daemon.name}: {state}  log: {daemon.log_file}")
    return 0 if all(d.pid() is not None for d in present) else 3

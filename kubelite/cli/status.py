"""`kubelite status`: which daemons run, and where their logs are."""

from __future__ import annotations

import argparse

from kubelite.cli.common import add_data_dir
from kubelite.cli.stop import DAEMONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)


def run(args: argparse.Namespace) -> int:
    from kubelite.cluster.daemon import Daemon

    running = 0
    for name in DAEMONS:
        daemon = Daemon(name, args.data_dir)
        pid = daemon.pid()
        running += pid is not None
        state = f"Running (pid {pid})" if pid else "Stopped"
        print(f"{name}: {state}  log: {daemon.log_file}")
    return 0 if running == len(DAEMONS) else 3

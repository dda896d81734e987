"""`kubelite stop`: stop the cluster's daemons, keeping all state for the next `kubelite start`."""

from __future__ import annotations

import argparse

from kubelite.cli.common import add_data_dir

DAEMONS = ("nodes", "agent", "server")  # nodes first, so they stop before the API they report to


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)


def run(args: argparse.Namespace) -> int:
    from kubelite.cluster.daemon import Daemon

    for name in DAEMONS:
        if Daemon(name, args.data_dir).stop():
            print(f"* {name}: stopped")
    return 0

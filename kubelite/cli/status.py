"""`kubelite status`: which of the cluster's daemons run, and where their logs are."""

from __future__ import annotations

import argparse

from kubelite.cli.common import add_data_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)


def run(args: argparse.Namespace) -> int:
    from kubelite.cluster.local import ClusterSpec, LocalCluster, load_spec

    spec = load_spec(args.data_dir)
    cluster = LocalCluster(args.data_dir, spec or ClusterSpec())
    present = [d for d in cluster.daemons() if d.pid_file.exists() or d.name == "server"
               or (spec is not None and spec.runtime == "runc" and d.name.startswith("node-"))]
    if spec is not None:
        print(f"cluster: {spec.name} ({spec.runtime} runtime, {len(spec.nodes)} node(s), API port {spec.port})")
    for daemon in present:
        pid = daemon.pid()
        state = f"Running (pid {pid})" if pid else "Stopped"
        print(f"{daemon.name}: {state}  log: {daemon.log_file}")
    return 0 if all(d.pid() is not None for d in present) else 3

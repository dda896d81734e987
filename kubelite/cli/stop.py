"""`kubelite stop`: stop the cluster's daemons, keeping all state for the next `kubelite start`.

Nodes stop first (before the API they report to); a runc node's pods are stopped with it and its
namespace removed, so nothing of the cluster runs afterwards; `start` recreates the namespaces and
the agents restart the pods the API still assigns to them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kubelite.cli.common import add_data_dir

if TYPE_CHECKING:
    from kubelite.cluster.local import LocalCluster


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)


def run(args: argparse.Namespace) -> int:
    from kubelite.cluster.local import ClusterSpec, LocalCluster, load_spec

    spec = load_spec(args.data_dir) or ClusterSpec()
    stop_cluster(LocalCluster(args.data_dir, spec))
    return 0


def stop_cluster(cluster: LocalCluster) -> None:
    for name in cluster.spec.nodes:
        running = cluster.node_daemon(name).pid() is not None
        if cluster.spec.runtime == "runc":
            cluster.stop_node(name)
        if running:
            print(f"* node {name}: stopped")
    for daemon in (cluster.hollow_nodes, cluster.server):
        if daemon.stop():
            print(f"* {daemon.name}: stopped")

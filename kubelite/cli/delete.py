"""`kubelite delete`: remove everything the cluster made, leaving the machine as it was.

In order: the nodes (agents stopped by PID, their pods' containers, sandboxes, mounts and cgroups
removed by `kubelite agent --cleanup`, their namespaces and links), the server (which removes the
host's Service proxy table and pod routes as it stops), then whatever an interrupted run left of
those (the host table, the bridge), the data directory and the `kubelite` context in
~/.kube/config.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from kubelite.cli.common import add_data_dir, user_kubeconfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)


def run(args: argparse.Namespace) -> int:
    from kubelite.cli.stop import stop_cluster
    from kubelite.cluster.local import LocalCluster, load_spec

    spec = load_spec(args.data_dir)
    if spec is None and not args.data_dir.exists():
        print(f"* nothing to delete in {args.data_dir}")
        return 0
    if spec is not None:
        cluster = LocalCluster(args.data_dir, spec)
        stop_cluster(cluster)
        if spec.runtime == "runc":
            cluster.host_network_down()
    else:
        from kubelite.cli.stop import run as stop

        stop(args)
    shutil.rmtree(args.data_dir, ignore_errors=True)
    if args.data_dir.exists():
        print(f"error: could not remove {args.data_dir} completely", file=sys.stderr)
        return 1
    _forget_context("kubelite")
    print(f"* Deleted the cluster in {args.data_dir}")
    return 0


def _forget_context(name: str) -> None:
    from kubelite.cluster.kubeconfig import remove_context

    path = user_kubeconfig()
    if path.exists():
        remove_context(path, name)

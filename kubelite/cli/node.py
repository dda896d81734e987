"""`kubelite node add | delete NAME | list`: grow or shrink a running cluster of runc nodes.

`add` makes the next node (namespace, link, agent) and waits until it is Ready. `delete` stops the
node's agent, removes its pods from the machine, its namespace and its state, then deletes the Node
and its pods through the API so their controllers recreate them on the other nodes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING

from kubelite.cli.common import add_data_dir

if TYPE_CHECKING:
    from kubelite.cluster.local import LocalCluster


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="node_verb", metavar="SUBCOMMAND", required=True)
    for verb, text in (("add", "add a node"), ("list", "list the nodes"), ("delete", "remove a node")):
        p = sub.add_parser(verb, help=text, description=text)
        add_data_dir(p)
        if verb == "delete":
            p.add_argument("name")


def run(args: argparse.Namespace) -> int:
    from kubelite.cluster.local import LocalCluster, load_spec

    spec = load_spec(args.data_dir)
    if spec is None:
        print(f"error: no cluster in {args.data_dir}: run `kubelite start` first", file=sys.stderr)
        return 1
    cluster = LocalCluster(args.data_dir, spec)
    if args.node_verb == "list":
        for name, index in sorted(spec.nodes.items(), key=lambda kv: kv[1]):
            address = spec.network.node_ip(index) if spec.runtime == "runc" else "-"
            state = "Running" if cluster.node_daemon(name).pid() is not None else "Stopped"
            print(f"{name}\t{address}\t{state}")
        return 0
    if spec.runtime != "runc":
        print("error: `kubelite node add|delete` is for runc clusters; hollow clusters change with "
              "`kubelite start --nodes N`", file=sys.stderr)
        return 1
    if cluster.server.pid() is None:
        print("error: the cluster is stopped: `kubelite start` first", file=sys.stderr)
        return 1
    return _add(cluster) if args.node_verb == "add" else _delete(cluster, args.name)


def _add(cluster: LocalCluster) -> int:
    from kubelite.cli.start import _wait_nodes, step
    from kubelite.cluster.local import LocalCluster, save_spec

    spec, name = cluster.spec.with_node_added()
    save_spec(cluster.data_dir, spec)
    grown = LocalCluster(cluster.data_dir, spec)
    step(f"Adding node {name} ({spec.network.node_ip(spec.nodes[name])})")
    grown.start_node(name)
    failed = _wait_nodes(grown)
    if failed is not None:
        print(f"error: node {name} did not become Ready; its log ({failed.log_file}) ends with:\n"
              f"{failed.last_log_lines()}", file=sys.stderr)
        return 1
    step(f"Node {name} is Ready")
    return 0


def _delete(cluster: LocalCluster, name: str) -> int:
    if name not in cluster.spec.nodes:
        known = ", ".join(cluster.spec.nodes) or "none"
        print(f"error: no node {name!r} in this cluster (nodes: {known})", file=sys.stderr)
        return 1
    delete_node(cluster, name)
    print(f"* Node {name} deleted")
    return 0


def delete_node(cluster: LocalCluster, name: str) -> None:
    """Remove node `name` from the machine, from the API and from the cluster's spec."""
    import shutil

    from kubelite.cluster.local import load_spec, save_spec

    cluster.stop_node(name)
    _delete_from_api(cluster, name)
    shutil.rmtree(cluster.node_dir(name), ignore_errors=True)
    cluster.node_daemon(name).log_file.unlink(missing_ok=True)
    current = load_spec(cluster.data_dir)
    if current is not None:
        save_spec(cluster.data_dir, current.without_node(name))


def _delete_from_api(cluster: LocalCluster, name: str) -> None:
    import asyncio

    from kubelite.client import Client, Connection
    from kubelite.client.resources import NODES, PODS
    from kubelite.objects.errors import NotFound, StatusError

    async def body() -> None:
        client = Client(Connection.from_kubeconfig(cluster.kubeconfig))
        try:
            with contextlib.suppress(NotFound):
                await client.delete(NODES, name)
            pods = (await client.list(PODS, field_selector=f"spec.nodeName={name}"))["items"]
            for pod in pods:  # nobody runs them any more: gone at once, so their owners replace them
                with contextlib.suppress(NotFound):
                    await client.delete(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"], grace_period=0)
        finally:
            await client.close()

    try:
        asyncio.run(body())
    except (OSError, StatusError) as exc:
        print(f"warning: node {name} not removed from the API: {exc}", file=sys.stderr)

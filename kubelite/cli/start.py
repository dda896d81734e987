"""`kubelite start`: bring up the cluster's daemons in the background and return when it serves.

Daemons: the server (API, controllers, scheduler, DNS; with runc nodes also the host's Service
proxy and pod routes) and the nodes: with `--runtime runc` (the default as root) one agent per
node, each in its own network namespace on the host bridge (`kubelite.cluster.netns`); with
`--runtime fake`, N hollow nodes in one daemon. The cluster's shape is kept in
`<data-dir>/cluster.json` at the first start (`kubelite.cluster.local`); a later start brings the
same cluster back, and `--nodes` adds or removes nodes. The admin kubeconfig is merged into
~/.kube/config as context `kubelite` and made current, as minikube does. Returns when the nodes
are Ready and the cluster DNS answers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from kubelite.cli.common import add_data_dir, user_kubeconfig

if TYPE_CHECKING:
    from kubelite.cluster.daemon import Daemon
    from kubelite.cluster.local import ClusterSpec, LocalCluster

READY_TIMEOUT = 90.0
HOLLOW_PREFIX = "kubelite-"
# flag -> ClusterSpec field; fixed when the cluster is created
SHAPE_FLAGS = {"port": "port", "bridge": "bridge", "node_network": "node_network", "cluster_cidr": "cluster_cidr",
               "service_cidr": "service_cidr", "lb_pool": "lb_pool", "dns_port": "dns_port",
               "node_monitor_grace_period": "node_monitor_grace_period", "runtime": "runtime", "name": "name",
               "registry_port": "registry_port", "pod_network": "pod_network", "offline": "offline"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)
    parser.add_argument("--datastore", default="", help="sqlite:///path (default: sqlite in the data dir)")
    parser.add_argument("--nodes", type=int, default=None, help="number of nodes (default: 1, or as before)")
    parser.add_argument("--runtime", choices=("runc", "fake"), default=None,
                        help="runc: real containers (needs root); fake: hollow nodes (default: runc as root)")
    shape = parser.add_argument_group("cluster shape (chosen at the first start, kept in <data-dir>/cluster.json)")
    shape.add_argument("--name", default=None, help="cluster name: node names, namespaces (default: kubelite)")
    shape.add_argument("--port", type=int, default=None, help="API server port (default: 6443)")
    shape.add_argument("--bridge", default=None, help="host bridge of the node network (default: kubelite0)")
    shape.add_argument("--node-network", default=None, help="nodes' addresses (default: 198.19.128.0/24)")
    shape.add_argument("--cluster-cidr", default=None, help="pods' addresses (default: 198.18.0.0/16)")
    shape.add_argument("--service-cidr", default=None, help="ClusterIPs (default: 198.19.0.0/17)")
    shape.add_argument("--lb-pool", default=None, help="LoadBalancer addresses (default: 198.19.200.0/24)")
    shape.add_argument("--dns-port", type=int, default=None, help="cluster DNS port on the host (default: 10053)")
    shape.add_argument("--registry-port", type=int, default=None,
                       help="image registry port on the host (default: 5000)")
    shape.add_argument("--pod-network", choices=("host-gw", "vxlan"), default=None,
                       help="how pods reach other nodes' pods: routes via the nodes (host-gw, the default) "
                            "or a VXLAN overlay")
    shape.add_argument("--offline", action="store_true", default=None,
                       help="nothing leaves this machine: nodes pull only from the cluster registry (and use "
                            "the images on the machine), the cluster DNS forwards no other names")
    shape.add_argument("--node-monitor-grace-period", type=float, default=None,
                       help="seconds without a heartbeat before a node is NotReady (default: 40)")


def run(args: argparse.Namespace) -> int:
    from kubelite.cluster.local import LocalCluster

    spec = _spec(args)
    if isinstance(spec, str):
        return _error(spec)
    problems = _preflight(spec)
    if problems:
        return _error("\n  - ".join(["kubelite cannot start a cluster here:", *problems]))
    cluster = LocalCluster(args.data_dir, spec)
    busy = _busy_ports(cluster)
    if busy:
        return _error(busy)
    from kubelite.cluster.local import load_spec, save_spec

    previous = load_spec(args.data_dir)
    started = time.monotonic()
    save_spec(args.data_dir, replace(spec, nodes={**(previous.nodes if previous else {}), **spec.nodes}))
    if spec.runtime == "runc":
        cluster.host_network_up()
    step("Starting the control plane (API server, controllers, scheduler, DNS, registry)")
    cluster.server.start(cluster.server_args() + (["--datastore", args.datastore] if args.datastore else []))
    images = _prepare_images(cluster)  # while the server starts: they need no API
    if not _wait_ready(cluster.server, spec.port, cluster.kubeconfig):
        return _failed(cluster.server, "the API server did not become ready")
    if images is not None:
        images.join()
    if previous is not None and previous.runtime == "runc":
        _remove_nodes(LocalCluster(args.data_dir, previous), [n for n in previous.nodes if n not in spec.nodes])
    save_spec(args.data_dir, spec)
    failed = _start_nodes(cluster)
    if failed is not None:
        return _failed(failed, "a node agent did not start")
    step(f"Waiting for {len(spec.nodes)} node(s) to be Ready and the cluster DNS to answer")
    waiting = _wait_nodes(cluster)
    if waiting is not None:
        return _failed(waiting, "the nodes did not become Ready")
    if not _wait_dns(spec.dns_port):
        return _failed(cluster.server, f"the cluster DNS does not answer on 127.0.0.1:{spec.dns_port}")
    _merge_kubeconfig(cluster.kubeconfig)
    step(f"Done in {time.monotonic() - started:.1f}s! kubectl is now configured to use \"kubelite\" "
         f"({user_kubeconfig()})")
    return 0


def _spec(args: argparse.Namespace) -> ClusterSpec | str:
    """The stored cluster with this start's changes, or why the flags cannot apply."""
    from kubelite.cluster.local import ClusterSpec, load_spec

    stored = load_spec(args.data_dir)
    given = {field: getattr(args, flag) for flag, field in SHAPE_FLAGS.items() if getattr(args, flag) is not None}
    if stored is None:
        runtime = given.pop("runtime", None) or ("runc" if os.geteuid() == 0 and shutil.which("runc") else "fake")
        spec = replace(ClusterSpec(), runtime=runtime, **given)
    else:
        changed = [f"--{flag.replace('_', '-')} (was {getattr(stored, field)})" for flag, field in SHAPE_FLAGS.items()
                   if field in given and given[field] != getattr(stored, field)]
        if changed:
            return (f"this cluster was created with other settings: {', '.join(changed)}; keep them, or "
                    f"`kubelite delete --data-dir {args.data_dir}` first")
        spec = stored
    count = args.nodes if args.nodes is not None else (len(spec.nodes) or 1)
    if count < 1:
        return "--nodes must be at least 1"
    return spec.with_nodes(count)


def _preflight(spec: ClusterSpec) -> list[str]:
    if spec.runtime != "runc":
        return []
    from kubelite.agent.hostnode import probe_preflight

    problems = probe_preflight(runc="runc", conmon="conmon", cni_dir=Path("/usr/lib/cni"))
    if shutil.which("nsenter") is None:
        problems.append("nsenter not found: apt-get install -y util-linux")
    if os.geteuid() != 0:
        problems = [p for p in problems if "root" not in p]
        problems.insert(0, "runc nodes need root (network namespaces, mounts, cgroups, nftables): run "
                           "`sudo kubelite start`, or `kubelite start --runtime fake` for hollow nodes without root")
    return problems


def _busy_ports(cluster: LocalCluster) -> str:
    """Which of the cluster's ports another program holds (the cluster's own server is fine)."""
    import socket

    if cluster.server.pid() is not None:
        return ""
    for port, what, flag, kind in ((cluster.spec.port, "the API server", "--port", socket.SOCK_STREAM),
                                   (cluster.spec.dns_port, "the cluster DNS", "--dns-port", socket.SOCK_DGRAM),
                                   (cluster.spec.registry_port, "the image registry", "--registry-port",
                                    socket.SOCK_STREAM)):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return (f"port {port} ({what}) is in use by another program: stop it, or start a new cluster "
                        f"with {flag} and its own --data-dir")
    return ""


def _start_nodes(cluster: LocalCluster) -> Daemon | None:
    """Start the nodes the spec lists and stop those it no longer does; the daemon that died, if any."""
    spec = cluster.spec
    if spec.runtime == "fake":
        step(f"Starting {len(spec.nodes)} hollow node(s)")
        daemon, count_file = cluster.hollow_nodes, cluster.data_dir / "run" / "hollow-count"
        if daemon.pid() is not None and _read_int(count_file) != len(spec.nodes):
            daemon.stop()
        daemon.start(["hollow-nodes", "--count", str(len(spec.nodes)), "--kubeconfig", str(cluster.kubeconfig),
                      "--prefix", HOLLOW_PREFIX])
        count_file.write_text(f"{len(spec.nodes)}\n")
        return None
    for name in spec.nodes:
        step(f"Starting node {name} ({spec.network.node_ip(spec.nodes[name])}, runc)")
        cluster.start_node(name)
    return None


def _prepare_images(cluster: LocalCluster) -> threading.Thread | None:
    """The offline test images in the nodes' image store, built in a thread (runc nodes only)."""
    if cluster.spec.runtime != "runc":
        return None

    def build() -> None:
        from kubelite.images.store import ImageStore
        from kubelite.images.testimages import ensure_test_images

        try:
            ensure_test_images(ImageStore(cluster.images_dir))
        except (OSError, ValueError) as exc:  # the cluster works without them
            print(f"warning: the offline test images were not built: {exc}", file=sys.stderr)

    step("Preparing the offline test images (busybox, httpd, kubernetes-bootcamp)")
    thread = threading.Thread(target=build, name="test-images", daemon=True)
    thread.start()
    return thread


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return -1


def _remove_nodes(previous: LocalCluster, names: list[str]) -> None:
    """Nodes a previous start made that this one does not want (`--nodes` lowered)."""
    from kubelite.cli.node import delete_node

    for name in names:
        step(f"Removing node {name}")
        delete_node(previous, name)


def step(message: str) -> None:
    print(f"* {message}", flush=True)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _failed(daemon: Daemon, what: str) -> int:
    print(f"error: {what}; its log ({daemon.log_file}) ends with:\n{daemon.last_log_lines()}\n"
          f"See `kubelite status` and `kubelite logs`.", file=sys.stderr)
    return 1


def _wait_ready(server: Daemon, port: int, kubeconfig: Path) -> bool:
    import ssl
    import urllib.request

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only probing liveness of our own local daemon
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.pid() is None:
            return False
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=context, timeout=1) as r:
                if r.status == 200 and kubeconfig.exists():
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def _wait_nodes(cluster: LocalCluster) -> Daemon | None:
    """None once every node is Ready; else the daemon to blame (one that died, or the server)."""
    import asyncio

    return asyncio.run(_poll_ready_nodes(cluster))


async def _poll_ready_nodes(cluster: LocalCluster) -> Daemon | None:
    import asyncio

    from kubelite.client import Client, Connection
    from kubelite.client.resources import NODES

    daemons = [cluster.hollow_nodes] if cluster.spec.runtime == "fake" else \
        [cluster.node_daemon(name) for name in cluster.spec.nodes]
    wanted = set(cluster.spec.nodes) if cluster.spec.runtime == "runc" else None
    client = Client(Connection.from_kubeconfig(cluster.kubeconfig))
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            dead = next((d for d in daemons if d.pid() is None), None)
            if dead is not None:
                return dead
            ready = {n["metadata"]["name"] for n in (await client.list(NODES))["items"]
                     if any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in (n.get("status") or {}).get("conditions") or [])}
            if (wanted <= ready) if wanted is not None else len(ready) >= len(cluster.spec.nodes):
                return None
            await asyncio.sleep(0.2)
        return daemons[0] if daemons else cluster.server
    finally:
        await client.close()


def _wait_dns(port: int) -> bool:
    import dns.exception
    import dns.message
    import dns.query

    query = dns.message.make_query("kubernetes.default.svc.cluster.local.", "A")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if dns.query.udp(query, "127.0.0.1", port=port, timeout=1).answer:
                return True
        except (OSError, dns.exception.DNSException):
            pass
        time.sleep(0.1)
    return False


def _merge_kubeconfig(admin: Path) -> None:
    from kubelite.cluster.kubeconfig import load_kubeconfig, merge_into

    merge_into(user_kubeconfig(), load_kubeconfig(admin), make_current=True)

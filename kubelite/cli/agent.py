"""`kubelite agent`: run one node's kubelet in the foreground.

    # a node whose pods are runc containers (root), on the host running the server:
    sudo kubelite agent --server https://127.0.0.1:6443 --pki-dir /var/lib/kubelite/pki
    # elsewhere, with credentials made by `python -m kubelite.cluster.nodecreds`:
    sudo kubelite agent --kubeconfig node/kubelet.kubeconfig --tls-cert-file node/kubelet.crt \\
        --tls-private-key-file node/kubelet.key --client-ca-file node/ca.crt --node-ip 10.0.0.2
    # a node without containers (the hollow runtime), any user:
    kubelite agent --runtime fake --kubeconfig admin.kubeconfig --name node-1
    # remove every pod this node runs (containers, sandboxes, addresses, mounts, cgroups), then exit:
    sudo kubelite agent --cleanup --data-dir /var/lib/kubelite

The runc node keeps its state in `--data-dir` (layout: `kubelite.agent.hostnode`). Credentials, in
order: `--kubeconfig`; `--server` + `--token`; `<data-dir>/kubelet.kubeconfig`; `--server` + the
cluster PKI, which mints that kubeconfig (client certificate `system:node:<name>`, O
`system:nodes`). The streaming server (logs, exec, attach, port-forward for the API server)
listens on `--address:--streaming-port` with a serving certificate issued from the PKI for the
node's IP, or the `--tls-*` files. Stopping the agent (SIGTERM) leaves its pods running; the next
agent on the same data dir carries on with them and removes those deleted meanwhile.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelite.cli.common import default_data_dir

if TYPE_CHECKING:
    from kubelite.agent.hostnode import NodePaths
    from kubelite.agent.server.certs import TlsSource
    from kubelite.client import Connection

RUNTIMES = ("runc", "fake")
DEFAULT_CLUSTER_DNS = "198.19.0.10"  # the dns service IP of the default service CIDR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_arguments(parser)
    parser.add_argument("--name", default=socket.gethostname().lower(), help="node name (default: hostname)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="runc", help="container runtime (default: runc)")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="node state: images, runtime root, pod logs, credentials (default: %(default)s)")
    parser.add_argument("--node-ip", default="",
                        help="InternalIP to report (default: the host's address towards the API server)")
    parser.add_argument("--cleanup", action="store_true",
                        help="remove every pod this node's runtime holds, then exit (runc)")
    add_streaming_arguments(parser)
    add_runc_arguments(parser)
    add_registry_arguments(parser)
    add_node_arguments(parser, measured=True)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig to reach the API with")
    parser.add_argument("--server", default="", help="API URL (with --token, or with the cluster PKI)")
    parser.add_argument("--token", default="", help="bearer token (with --server)")
    parser.add_argument("--certificate-authority", type=Path,
                        help="CA bundle to verify the server with (with --server; without it TLS is not verified)")
    parser.add_argument("--log-level", default="info")


def add_streaming_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("streaming server (kubectl logs/exec/attach/port-forward)")
    group.add_argument("--address", default="0.0.0.0", help="address to listen on (default: %(default)s)")
    group.add_argument("--streaming-port", type=int, default=10250,
                       help="port to listen on; 0 = any free port (default: %(default)s)")
    group.add_argument("--pki-dir", type=Path,
                       help="the cluster PKI (ca.crt, ca.key) to issue node certificates from "
                            "(default: <data-dir>/pki when it holds the CA key)")
    group.add_argument("--tls-cert-file", type=Path, help="serving certificate (instead of --pki-dir)")
    group.add_argument("--tls-private-key-file", type=Path, help="its key")
    group.add_argument("--client-ca-file", type=Path, help="CA the API server's client certificate chains to")


def add_runc_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("runc runtime")
    group.add_argument("--runc", default="runc", help="runc binary (default: %(default)s)")
    group.add_argument("--conmon", default="conmon", help="conmon binary (default: %(default)s)")
    group.add_argument("--cni-bin-dir", type=Path, default=Path("/usr/lib/cni"), help="CNI plugins (default: %(default)s)")
    group.add_argument("--cni-bridge", default="cni0", help="the pods' bridge (default: %(default)s)")
    group.add_argument("--cluster-dns", default=DEFAULT_CLUSTER_DNS,
                       help="DNS server(s) for pods, comma-separated (default: %(default)s)")
    group.add_argument("--cluster-domain", default="cluster.local", help="(default: %(default)s)")
    group.add_argument("--cgroup-parent", default="kubelite",
                       help="cgroup (below the agent's own) that holds the pods' cgroups (default: %(default)s)")
    group.add_argument("--netns-prefix", default="kl", help="prefix of the pods' network namespaces (default: %(default)s)")
    group.add_argument("--images-dir", type=Path, default=None,
                       help="image store, may be shared by the nodes of one machine (default: <data-dir>/images)")
    network = parser.add_argument_group("node network")
    network.add_argument("--proxy", choices=("auto", "nftables", "userspace", "none"), default="auto",
                         help="Service proxy backend; none: no proxy (default: %(default)s)")
    network.add_argument("--proxy-table", default="kubelite", help="nftables table of the proxy (default: %(default)s)")
    network.add_argument("--cluster-cidr", default="",
                         help="all pods' addresses (traffic from elsewhere to a Service is masqueraded; "
                              "default: this node's pod CIDR)")
    network.add_argument("--pod-routes", choices=("host-gw", "vxlan", "none"), default="none",
                         help="routes to the other nodes' pod CIDRs (default: %(default)s)")


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("image pulls (runc)")
    group.add_argument("--registries-config", type=Path, metavar="PATH",
                       help="mirrors, TLS, credentials and plain-HTTP registries, k3s-style "
                            "(default: <data-dir>/registries.yaml if present)")
    group.add_argument("--insecure-registry", action="append", default=[], metavar="HOST",
                       help="pull from this registry over plain HTTP (host:port, host or CIDR; repeatable)")
    group.add_argument("--registry-mirror", action="append", default=[], metavar="NAME=URL",
                       help="try URL first for images of registry NAME, e.g. "
                            "localhost:5000=http://198.19.128.1:5000 (repeatable)")
    group.add_argument("--pull-only-from", action="append", default=[], metavar="HOST:PORT",
                       help="pull from these registry hosts only, never from others (offline nodes; repeatable)")


def add_node_arguments(parser: argparse.ArgumentParser, *, measured: bool = False) -> None:
    """Node resources; `measured`: cpu and memory default to the host's (for the runc runtime)."""
    parser.add_argument("--cpu", default=None if measured else "4",
                        help="cpu capacity (default: " + ("the host's, or 4 with --runtime fake)" if measured else "%(default)s)"))
    parser.add_argument("--memory", default=None if measured else "16Gi",
                        help="memory capacity (default: " + ("the host's, or 16Gi with --runtime fake)" if measured else "%(default)s)"))
    parser.add_argument("--max-pods", type=int, default=110, help="pods capacity (default: %(default)s)")
    parser.add_argument("--ready-delay", type=float, default=0.0,
                        help="seconds before a started container turns Ready (default: %(default)s)")
    parser.add_argument("--no-events", action="store_true", help="record no Events (cheaper at scale)")
    parser.add_argument("--node-lease-renew-interval", type=float, default=10.0, metavar="SECONDS",
                        help="how often the node's Lease is renewed and its status checked; keep it well "
                             "under the server's --node-monitor-grace-period (default: %(default)s)")


# ----- credentials -------------------------------------------------------------------------------

def connection(args: argparse.Namespace) -> Connection:
    """The API connection from --kubeconfig or --server/--token (hollow nodes, the fake agent)."""
    import ssl

    from kubelite.client import Connection

    if args.kubeconfig:
        return Connection.from_kubeconfig(args.kubeconfig)
    if not args.server:
        raise SystemExit("error: give --kubeconfig, or --server with --token")
    context = None
    if args.server.startswith("https://") and args.certificate_authority:
        context = ssl.create_default_context(cafile=str(args.certificate_authority))
    return Connection(args.server.rstrip("/"), ssl_context=context, token=args.token or None)


def pki_dir(args: argparse.Namespace) -> Path | None:
    if args.pki_dir:
        if not (Path(args.pki_dir) / "ca.key").exists():
            raise SystemExit(f"error: no ca.key in --pki-dir {args.pki_dir} (the server's <data-dir>/pki holds it)")
        return Path(args.pki_dir)
    default = Path(args.data_dir) / "pki"
    return default if (default / "ca.key").exists() else None


def node_connection(args: argparse.Namespace, paths: NodePaths) -> Connection:
    """The node's own credentials (see the module docstring for the order)."""
    from kubelite.client import Connection
    from kubelite.cluster.nodecreds import write_node_kubeconfig
    from kubelite.cluster.pki import Pki

    if args.kubeconfig or (args.server and args.token):
        return connection(args)
    if paths.kubeconfig.exists():
        return Connection.from_kubeconfig(paths.kubeconfig)
    pki = pki_dir(args)
    if args.server and pki is not None:
        path = write_node_kubeconfig(Pki.at(pki), node_name=args.name, server=args.server.rstrip("/"),
                                     data_dir=paths.data_dir)
        return Connection.from_kubeconfig(path)
    raise SystemExit(f"error: no node credentials: give --kubeconfig, or --server with --pki-dir (the cluster "
                     f"PKI, to mint {paths.kubeconfig}), or --server with --token; for a remote node see "
                     "`python -m kubelite.cluster.nodecreds --help`")


def tls_source(args: argparse.Namespace) -> TlsSource | None:
    from kubelite.agent.server.certs import from_cluster_pki, from_files
    from kubelite.cluster.pki import Pki

    files = (args.tls_cert_file, args.tls_private_key_file, args.client_ca_file)
    if any(files):
        if not all(files):
            raise SystemExit("error: --tls-cert-file, --tls-private-key-file and --client-ca-file go together")
        return from_files(*files)
    pki = pki_dir(args)
    return from_cluster_pki(Pki.at(pki)) if pki is not None else None


def kubelet_config(args: argparse.Namespace, **extra: Any) -> Any:
    from kubelite.agent.config import KubeletConfig

    return KubeletConfig(ready_delay=args.ready_delay, record_events=not args.no_events,
                         renew_interval=args.node_lease_renew_interval, **extra)


def run_until_signalled(main: Any, stop: Any) -> None:
    """Run `main()` (an async start), then wait for SIGINT/SIGTERM and run `stop()`."""
    import asyncio
    import signal

    async def body() -> None:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        try:
            await main()
            await done.wait()
        finally:
            await stop()

    asyncio.run(body())


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


# ----- verbs -------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.runtime == "fake":
        if args.cleanup:
            return fail("--cleanup is for the runc runtime (the fake runtime leaves nothing on the host)")
        return run_fake(args)
    from kubelite.cli.agent_runc import run_cleanup, run_runc

    return run_cleanup(args) if args.cleanup else run_runc(args)


def run_fake(args: argparse.Namespace) -> int:
    import logging

    from kubelite.agent.config import NodeConfig, node_ip_for_name
    from kubelite.agent.runtime.fake import FakeRuntime

    node = NodeConfig(name=args.name, internal_ip=args.node_ip or node_ip_for_name(args.name),
                      cpu=args.cpu or "4", memory=args.memory or "16Gi", pods=args.max_pods,
                      kubelet_port=args.streaming_port)
    tls = tls_source(args) if (args.pki_dir or args.tls_cert_file) else None
    serve(lambda: connection(args), node, lambda: FakeRuntime(node.name), args=args, tls=tls,
          log=logging.getLogger("kubelite.agent"))
    return 0


def serve(make_connection: Any, node: Any, make_runtime: Any, *, args: argparse.Namespace, tls: TlsSource | None,
          log: Any, on_stop: Any = None, root_dir: str = "", services: Any = None) -> None:
    """Register the node and run its kubelet until SIGTERM/SIGINT; `on_stop(runtime)` after the
    kubelet stopped. `root_dir`: the kubelet's directory for pod volumes ("" = none).
    `services(client)`: more node services (the Service proxy, pod routes), each with async
    `start()` and `stop()`, started after the kubelet and stopped before it."""
    from kubelite.agent.host import KubeletHost
    from kubelite.agent.kubelet import AgentClients, Kubelet
    from kubelite.agent.server.app import StreamingServer
    from kubelite.client import Client

    config = kubelet_config(args, root_dir=root_dir)
    state: dict[str, Any] = {}

    async def start() -> None:
        client = state["client"] = Client(make_connection(), user_agent=f"kubelet/{node.kubelet_version}")
        clients = state["clients"] = AgentClients.alongside(client, heartbeat_connections=2, event_connections=2)
        runtime = state["runtime"] = make_runtime()
        kubelet = Kubelet(clients, node, runtime, config=config)
        if tls is not None:
            kubelet.streaming = StreamingServer(tls=tls, host=args.address, port=args.streaming_port)
        host = state["host"] = KubeletHost(client, [kubelet], config=config,
                                           pod_field_selector=f"spec.nodeName={node.name}",
                                           node_field_selector=f"metadata.name={node.name}")
        await host.start()
        log.info("node %s registered and running (%s, InternalIP %s)", node.name, runtime.version(), node.internal_ip)
        for service in (services(client) if services is not None else []):
            state.setdefault("services", []).append(service)
            await service.start()

    async def stop() -> None:
        for service in reversed(state.get("services", [])):
            try:
                await service.stop()
            except Exception as exc:  # the others and the kubelet still stop
                log.error("stopping %s: %s", type(service).__name__, exc)
        if "host" in state:
            await state["host"].stop()
        if on_stop is not None and "runtime" in state:
            await on_stop(state["runtime"])
        if "clients" in state:
            await state["clients"].close_extra()
        if "client" in state:
            await state["client"].close()

    run_until_signalled(start, stop)

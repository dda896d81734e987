"""`kubelite agent`: run one node's kubelet in the foreground.

    kubelite agent --kubeconfig admin.kubeconfig --name node-1 --runtime fake
    kubelite agent --server https://10.0.0.1:6443 --token T --certificate-authority ca.crt --name node-1

Only the fake runtime exists today (containers "run" without processes); the runc runtime will be
another `--runtime` choice implementing the same interface.
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubelite.client import Connection

RUNTIMES = ("fake",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_arguments(parser)
    parser.add_argument("--name", default=socket.gethostname().lower(), help="node name (default: hostname)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="fake", help="container runtime")
    parser.add_argument("--node-ip", default="", help="InternalIP to report (default: a stable fake address)")
    add_node_arguments(parser)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig to reach the API with")
    parser.add_argument("--server", default="", help="API URL (with --token)")
    parser.add_argument("--token", default="", help="bearer token (with --server)")
    parser.add_argument("--certificate-authority", type=Path,
                        help="CA bundle to verify the server with (with --server; without it TLS is not verified)")
    parser.add_argument("--log-level", default="info")


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cpu", default="4", help="cpu capacity (default: %(default)s)")
    parser.add_argument("--memory", default="16Gi", help="memory capacity (default: %(default)s)")
    parser.add_argument("--max-pods", type=int, default=110, help="pods capacity (default: %(default)s)")
    parser.add_argument("--ready-delay", type=float, default=0.0,
                        help="seconds before a started container turns Ready (default: %(default)s)")
    parser.add_argument("--no-events", action="store_true", help="record no Events (cheaper at scale)")


def connection(args: argparse.Namespace) -> Connection:
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


def kubelet_config(args: argparse.Namespace) -> Any:
    from kubelite.agent.config import KubeletConfig

    return KubeletConfig(ready_delay=args.ready_delay, record_events=not args.no_events)


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


def run(args: argparse.Namespace) -> int:
    import logging

    from kubelite.agent.config import NodeConfig, node_ip_for_name
    from kubelite.agent.host import KubeletHost
    from kubelite.agent.kubelet import AgentClients, Kubelet
    from kubelite.agent.runtime.fake import FakeRuntime
    from kubelite.client import Client

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = kubelet_config(args)
    node = NodeConfig(name=args.name, internal_ip=args.node_ip or node_ip_for_name(args.name), cpu=args.cpu,
                      memory=args.memory, pods=args.max_pods)
    state: dict[str, Any] = {}

    async def start() -> None:
        client = state["client"] = Client(connection(args), user_agent=f"kubelet/{node.kubelet_version}")
        clients = state["clients"] = AgentClients.alongside(client, heartbeat_connections=2, event_connections=2)
        kubelet = Kubelet(clients, node, FakeRuntime(node.name), config=config)
        host = state["host"] = KubeletHost(client, [kubelet], config=config,
                                           pod_field_selector=f"spec.nodeName={node.name}",
                                           node_field_selector=f"metadata.name={node.name}")
        await host.start()
        logging.getLogger("kubelite.agent").info("node %s registered and running", node.name)

    async def stop() -> None:
        if "host" in state:
            await state["host"].stop()
        if "clients" in state:
            await state["clients"].close_extra()
        if "client" in state:
            await state["client"].close()

    run_until_signalled(start, stop)
    return 0

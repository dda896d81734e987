"""`kubelite start`: bring up the cluster's daemons in the background and return when it serves.

Daemons: the server (API, controllers, scheduler, DNS) and the nodes: with `--runtime fake`, N
hollow nodes in one `kubelite hollow-nodes` daemon; with `--runtime runc` (the default as root), one
`kubelite agent` on this host (several runc nodes on one machine, each in its own network namespace,
are not there yet). The admin kubeconfig is merged into ~/.kube/config as context `kubelite` and made
current, as minikube does. Running it again starts whatever is not running.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kubelite.cli.common import add_data_dir, user_kubeconfig

if TYPE_CHECKING:
    from kubelite.cluster.daemon import Daemon

READY_TIMEOUT = 60.0
NODE_PREFIX = "kubelite-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)
    parser.add_argument("--datastore", default="", help="sqlite:///path (default: sqlite in the data dir)")
    parser.add_argument("--port", type=int, default=None,
                        help="API server port (default: the cluster's previous port, else 6443)")
    parser.add_argument("--nodes", type=int, default=1, help="number of nodes (default: %(default)s)")
    parser.add_argument("--runtime", choices=("runc", "fake"), default=None,
                        help="runc: real containers (needs root); fake: hollow nodes (default: runc as root)")


def run(args: argparse.Namespace) -> int:
    from kubelite.cluster.daemon import Daemon

    runtime = args.runtime or ("runc" if os.geteuid() == 0 and shutil.which("runc") else "fake")
    if runtime == "runc" and args.nodes != 1:
        print("error: --runtime runc runs one node on this host for now; use --nodes 1, or --runtime fake "
              "for several hollow nodes", file=sys.stderr)
        return 2
    args.port = _port(args)
    server = Daemon("server", args.data_dir)
    step("Starting the control plane (API server, controllers, scheduler, DNS)")
    cmd = ["server", "--data-dir", str(args.data_dir), "--port", str(args.port)]
    server.start(cmd + (["--datastore", args.datastore] if args.datastore else []))
    kubeconfig = args.data_dir / "admin.kubeconfig"
    if not _wait_ready(server, args.port, kubeconfig):
        return _failed(server, "the API server did not become ready")
    nodes = _start_nodes(args, runtime, kubeconfig)
    step(f"Waiting for {args.nodes} node(s) to be Ready ({runtime} runtime)")
    if not _wait_nodes(nodes, kubeconfig, args.nodes):
        return _failed(nodes, "the nodes did not become Ready")
    _merge_kubeconfig(kubeconfig)
    step(f"Done! kubectl is now configured to use \"kubelite\" ({user_kubeconfig()})")
    return 0


def _start_nodes(args: argparse.Namespace, runtime: str, kubeconfig: Path) -> Daemon:
    from kubelite.cluster.daemon import Daemon

    if runtime == "fake":
        daemon = Daemon("nodes", args.data_dir)
        step(f"Starting {args.nodes} hollow node(s)")
        daemon.start(["hollow-nodes", "--count", str(args.nodes), "--kubeconfig", str(kubeconfig),
                      "--prefix", NODE_PREFIX])
        return daemon
    daemon = Daemon("agent", args.data_dir)
    step("Building the offline test images and starting the node agent (runc)")
    from kubelite.images.store import ImageStore, default_root
    from kubelite.images.testimages import ensure_test_images

    ensure_test_images(ImageStore(default_root(args.data_dir)))
    daemon.start(["agent", "--data-dir", str(args.data_dir), "--server", f"https://127.0.0.1:{args.port}"])
    return daemon


def _port(args: argparse.Namespace) -> int:
    """The port given, else the one this cluster was started with before (kept in the data dir)."""
    remembered = args.data_dir / "run" / "port"
    if args.port is None:
        try:
            return int(remembered.read_text())
        except (OSError, ValueError):
            return 6443
    remembered.parent.mkdir(parents=True, exist_ok=True)
    remembered.write_text(f"{args.port}\n")
    return int(args.port)


def step(message: str) -> None:
    print(f"* {message}", flush=True)


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


def _wait_nodes(daemon: Daemon, kubeconfig: Path, count: int) -> bool:
    import asyncio

    return asyncio.run(_poll_ready_nodes(daemon, kubeconfig, count))


async def _poll_ready_nodes(daemon: Daemon, kubeconfig: Path, count: int) -> bool:
    import asyncio

    from kubelite.client import Client, Connection
    from kubelite.client.resources import NODES

    client = Client(Connection.from_kubeconfig(kubeconfig))
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if daemon.pid() is None:
                return False
            nodes = (await client.list(NODES))["items"]
            ready = sum(1 for n in nodes for c in (n.get("status") or {}).get("conditions") or []
                        if c.get("type") == "Ready" and c.get("status") == "True")
            if ready >= count:
                return True
            await asyncio.sleep(0.2)
        return False
    finally:
        await client.close()


def _merge_kubeconfig(admin: Path) -> None:
    from kubelite.cluster.kubeconfig import load_kubeconfig, merge_into

    merge_into(user_kubeconfig(), load_kubeconfig(admin), make_current=True)

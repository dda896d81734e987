"""`kubelite start`: bring up the cluster's daemons in the background and return when it serves.

Today this starts the control plane (the API server); nodes come with the node agent. The admin
kubeconfig is merged into ~/.kube/config as context `kubelite` and made current, as minikube does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kubelite.cli.common import add_data_dir, user_kubeconfig

if TYPE_CHECKING:
    from kubelite.cluster.daemon import Daemon

READY_TIMEOUT = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)
    parser.add_argument("--datastore", default="", help="sqlite:///path (default: sqlite in the data dir)")
    parser.add_argument("--port", type=int, default=6443)


def run(args: argparse.Namespace) -> int:
    from kubelite.cluster.daemon import Daemon

    server = Daemon("server", args.data_dir)
    step("Starting the control plane (API server)")
    cmd = ["server", "--data-dir", str(args.data_dir), "--port", str(args.port)]
    if args.datastore:
        cmd += ["--datastore", args.datastore]
    server.start(cmd)
    kubeconfig = args.data_dir / "admin.kubeconfig"
    if not _wait_ready(server, args.port, kubeconfig):
        print(f"error: the API server did not become ready; its log ({server.log_file}) ends with:\n"
              f"{server.last_log_lines()}", file=sys.stderr)
        return 1
    _merge_kubeconfig(kubeconfig)
    step(f"Done! kubectl is now configured to use \"kubelite\" ({user_kubeconfig()})")
    return 0


def step(message: str) -> None:
    print(f"* {message}", flush=True)


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


def _merge_kubeconfig(admin: Path) -> None:
    from kubelite.cluster.kubeconfig import load_kubeconfig, merge_into

    merge_into(user_kubeconfig(), load_kubeconfig(admin), make_current=True)

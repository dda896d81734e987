"""`kubelite` command line: parse, then dispatch to one module per verb (imported lazily so that
`kubelite --help` and `kubelite start` stay fast)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

VERBS = {
    "start": ("kubelite.cli.start", "start a cluster in the background and configure kubectl"),
    "stop": ("kubelite.cli.stop", "stop the cluster, keeping its state"),
    "status": ("kubelite.cli.status", "show whether the cluster's daemons run"),
    "delete": ("kubelite.cli.delete", "remove the cluster and everything it made on this machine"),
    "node": ("kubelite.cli.node", "add, delete or list the nodes of a runc cluster"),
    "server": ("kubelite.cli.server", "run the control plane (API server) in the foreground"),
    "agent": ("kubelite.cli.agent", "run a node agent (kubelet) in the foreground"),
    "hollow-nodes": ("kubelite.cli.hollow", "run many hollow nodes (kubelets with a fake runtime) in one process"),
    "image": ("kubelite.cli.image", "manage the node's image store (import, load, save, ls, tag, rm, inspect)"),
    "logs": ("kubelite.cli.logs", "print the cluster daemons' logs (server, nodes); -f follows"),
    "kubectl": ("kubelite.cli.kubectl", "run kubectl against this cluster: kubelite kubectl -- ARGS"),
    "service": ("kubelite.cli.service", "print a NodePort/LoadBalancer Service's URL and open a browser"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubelite", description="A Kubernetes you install with pip.")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    modules = {}
    for verb, (module_name, help_text) in VERBS.items():
        module = importlib.import_module(module_name)
        modules[verb] = module
        module.add_arguments(sub.add_parser(verb, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    if not args.verb:
        parser.print_help()
        return 2
    try:
        return int(modules[args.verb].run(args) or 0)
    except BrokenPipeError:  # `kubelite ... | head`: the reader left; Python's own way out, no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

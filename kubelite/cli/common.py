"""Options and helpers shared by the cluster verbs (start, stop, status)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/kubelite")
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "kubelite"


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="cluster state, certificates, logs (default: %(default)s)")


def user_kubeconfig() -> Path:
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(first) if first else Path.home() / ".kube" / "config"

"""`kubelite start / status / stop` as a user runs them: background daemons, kubeconfig merged as
context `kubelite`, hollow nodes Ready, the real kubectl deploying onto them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelite.cluster.daemon import Daemon
from tests.integration.conftest import KUBECTL, free_port


@pytest.fixture
def home(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ, "HOME": str(tmp_path / "home"), "KUBECONFIG": ""}
    yield env
    for name in ("nodes", "agent", "server"):  # whatever a failed test left running, by PID file
        Daemon(name, tmp_path / "data").stop()


def kubelite(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubelite.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_start_status_stop_with_hollow_nodes(tmp_path: Path, home: dict[str, str]) -> None:
    data = str(tmp_path / "data")
    port = free_port()
    started = kubelite(home, "start", "--data-dir", data, "--port", str(port), "--runtime", "fake",
                       "--nodes", "2", "--dns-port", str(free_port()), "--registry-port", str(free_port()))
    assert started.returncode == 0, started.stdout + started.stderr
    assert 'kubectl is now configured to use "kubelite"' in started.stdout
    kubeconfig = Path(home["HOME"]) / ".kube" / "config"
    assert "current-context: kubelite" in kubeconfig.read_text()
    kubectl = [KUBECTL, f"--cache-dir={tmp_path / 'cache'}"]
    nodes = json.loads(subprocess.run([*kubectl, "get", "nodes", "-o", "json"], capture_output=True,
                                      text=True, env=home, check=True).stdout)["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == ["kubelite-0", "kubelite-1"]
    status = kubelite(home, "status", "--data-dir", data)
    assert status.returncode == 0 and "server: Running" in status.stdout and "nodes: Running" in status.stdout
    again = kubelite(home, "start", "--data-dir", data, "--runtime", "fake", "--nodes", "2")
    assert again.returncode == 0, again.stderr  # idempotent: nothing new to start
    other = kubelite(home, "start", "--data-dir", data, "--port", str(port + 1))
    assert other.returncode == 2 and f"--port (was {port})" in other.stderr  # the shape is fixed at creation
    stopped = kubelite(home, "stop", "--data-dir", data)
    assert "server: stopped" in stopped.stdout and "nodes: stopped" in stopped.stdout
    assert kubelite(home, "status", "--data-dir", data).returncode == 3
    deleted = kubelite(home, "delete", "--data-dir", data)
    assert deleted.returncode == 0 and not Path(data).exists()
    assert "kubelite" not in kubeconfig.read_text()  # the context, cluster and user are gone

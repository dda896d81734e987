"""Integration fixtures: a real kubelite API server in-process (own thread and event loop, TLS, a
free port) driven by clients nobody here wrote: the pinned kubectl and the official client."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from kubelite.cluster.config import ServerConfig
from kubelite.cluster.server import ServerRuntime

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """Runs a ServerRuntime on its own event loop so tests can block on subprocesses freely."""

    def __init__(self, data_dir: Path, *, tls: bool = True, datastore: str = "", controllers: str = "",
                 scheduler: bool = False, **config_overrides: Any) -> None:
        config_overrides.setdefault("advertise_address", "127.0.0.1")
        config_overrides.setdefault("dns", False)  # tests that want DNS ask for it, on a free port
        config_overrides.setdefault("registry", False)  # likewise the image registry
        self.config = ServerConfig(data_dir=data_dir, datastore=datastore, port=free_port(), tls=tls,
                                   controllers=controllers, scheduler=scheduler, **config_overrides)
        self.loop = asyncio.new_event_loop()
        self.runtime = ServerRuntime(self.config)
        self.thread = threading.Thread(target=self.loop.run_forever, name="kubelite-server", daemon=True)
        self.cache_dir = data_dir / "kubectl-cache"

    def start(self) -> ServerThread:
        self.thread.start()
        self.call(self.runtime.start())
        return self

    def call(self, coro: Any, timeout: float = 30) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.call(self.runtime.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def kubeconfig(self) -> Path:
        assert self.runtime.admin_kubeconfig is not None
        return self.runtime.admin_kubeconfig

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [KUBECTL, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}", *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, "HOME": str(self.config.data_dir)})
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def popen_kubectl(self, *args: str) -> subprocess.Popen[str]:
        cmd = [KUBECTL, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}", *args]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "HOME": str(self.config.data_dir)})


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    srv = ServerThread(tmp_path_factory.mktemp("kubelite-server")).start()
    yield srv
    srv.stop()


@pytest.fixture
def ns(server: ServerThread) -> Iterator[str]:
    """A fresh namespace per test, so tests sharing the server never see each other's objects."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    server.kubectl("create", "namespace", name)
    yield name


@pytest.fixture(scope="session")
def api_client(server: ServerThread) -> Any:
    """The official `kubernetes` Python client, configured from the admin kubeconfig."""
    from kubernetes import config as k8s_config

    api = k8s_config.new_client_from_config(config_file=str(server.kubeconfig))
    yield api
    api.close()

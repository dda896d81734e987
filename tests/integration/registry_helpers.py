"""Helpers for the registry tests: our RegistryServer on its own event loop thread (so tests can
block on skopeo), Debian's docker-registry in a temporary directory (stopped by PID), tool checks
that fail with what to install, and a few files-on-disk views used to prove nothing was stored."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from kubelite.images.registry.server import RegistryServer
from tests.integration.conftest import free_port

PACKAGES = {"skopeo": "skopeo", "umoci": "umoci", "docker-registry": "docker-registry"}


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        packages = " ".join(sorted({PACKAGES.get(t, t) for t in missing}))
        pytest.fail(f"the registry interop tests need {', '.join(missing)}: apt-get install -y {packages}")


def run(*args: str | Path, timeout: float = 120) -> str:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


class RegistryThread:
    """A RegistryServer on 127.0.0.1:<free port>, served from its own event loop thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kubelite-registry", daemon=True)
        self.server = RegistryServer(root, [("127.0.0.1", 0)])

    def call(self, coro: Any, timeout: float = 30) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def start(self) -> RegistryThread:
        self.thread.start()
        self.call(self.server.start())
        return self

    def stop(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"


class DockerRegistry:
    """Debian's docker-registry (the reference distribution server) on a free loopback port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.storage = directory / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DockerRegistry:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "config.yml"
        config.write_text("version: 0.1\nlog: {level: warn}\n"
                          f"storage:\n  filesystem: {{rootdirectory: {self.storage}}}\n  delete: {{enabled: true}}\n"
                          f"http: {{addr: {self.host}}}\n")
        log = open(self.directory / "registry.log", "wb")  # noqa: SIM115 - the child keeps writing it
        self.process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError("docker-registry did not start:\n"
                                         + (self.directory / "registry.log").read_text()) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def blob_digests(self) -> set[str]:
        """Every blob it stores (its layout: docker/registry/v2/blobs/sha256/<xx>/<hex>/data)."""
        root = self.storage / "docker/registry/v2/blobs/sha256"
        return {f"sha256:{p.parent.name}" for p in root.glob("*/*/data")}


def blob_files(root: Path) -> dict[str, int]:
    """Our registry's stored blobs: digest -> size."""
    return {f"{p.parent.name}:{p.name}": p.stat().st_size for p in (root / "blobs").glob("*/*")
            if not p.name.startswith(".")}


def upload_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "uploads").iterdir())

"""Nothing acknowledged is lost: a real `kubelite server` process is killed with SIGKILL in the
middle of a concurrent write load, restarted on the same data, and must still hold every object it
answered 201 for, with resourceVersions that keep rising."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import free_port

WRITERS = 8
KILL_AFTER_ACKS = 300


class ServerProcess:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.data_dir / "server.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "kubelite.cli.main", "server", "--data-dir",
                                      str(self.data_dir), "--port", str(self.port), "--log-level", "warning",
                                      "--controllers=", "--no-scheduler", "--no-dns"],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, _ = self.request("GET", "/readyz")
                if status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("server did not start: " + (self.data_dir / "server.log").read_text())

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(10)

    def context(self) -> ssl.SSLContext:
        pki = self.data_dir / "pki"
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return context

    def request(self, method: str, path: str, body: dict | None = None,
                conn: http.client.HTTPSConnection | None = None) -> tuple[int, dict]:
        own = conn is None
        conn = conn or http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(), timeout=10)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
            return response.status, (json.loads(raw) if raw.startswith(b"{") else {})
        finally:
            if own:
                conn.close()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path)
    yield proc
    proc.kill()


def write_until_killed(srv: ServerProcess, writer: int, acked: list[tuple[str, int]], stop: threading.Event) -> None:
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=srv.context(), timeout=10)
    i = 0
    while not stop.is_set():
        name = f"w{writer}-{i}"
        try:
            status, body = srv.request("POST", "/api/v1/namespaces/default/configmaps",
                                       {"metadata": {"name": name}, "data": {"i": str(i)}}, conn)
        except (OSError, http.client.HTTPException):
            return  # the server died: this write was never acknowledged
        if status == 201:
            acked.append((name, int(body["metadata"]["resourceVersion"])))
        i += 1


def test_kill_9_mid_write_loses_nothing_acknowledged(server_process: ServerProcess) -> None:
    server_process.start()
    acked: list[tuple[str, int]] = []
    stop = threading.Event()
    threads = [threading.Thread(target=write_until_killed, args=(server_process, w, acked, stop))
               for w in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < KILL_AFTER_ACKS and time.monotonic() < deadline:
        time.sleep(0.01)
    server_process.kill(signal.SIGKILL)  # mid-load: writers are still sending
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acked) >= KILL_AFTER_ACKS

    server_process.start()
    status, listed = server_process.request("GET", "/api/v1/namespaces/default/configmaps")
    assert status == 200
    present = {item["metadata"]["name"]: int(item["metadata"]["resourceVersion"]) for item in listed["items"]}
    missing = [name for name, _ in acked if name not in present]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    assert all(present[name] == rv for name, rv in acked)
    status, after = server_process.request("POST", "/api/v1/namespaces/default/configmaps",
                                           {"metadata": {"name": "after-restart"}})
    assert status == 201
    assert int(after["metadata"]["resourceVersion"]) > max(rv for _, rv in acked)


def test_graceful_restart_keeps_objects_and_allocations(server_process: ServerProcess) -> None:
    server_process.start()
    status, svc = server_process.request("POST", "/api/v1/namespaces/default/services", {
        "metadata": {"name": "keep"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}})
    assert status == 201
    server_process.kill(signal.SIGTERM)
    server_process.start()
    status, again = server_process.request("GET", "/api/v1/namespaces/default/services/keep")
    assert status == 200 and again["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
    assert again["metadata"]["uid"] == svc["metadata"]["uid"]
    # the allocations survived too: asking for the same nodePort is refused
    status, body = server_process.request("POST", "/api/v1/namespaces/default/services", {
        "metadata": {"name": "clash"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": svc["spec"]["ports"][0]["nodePort"]}]}})
    assert status == 422 and "provided port is already allocated" in body["message"]

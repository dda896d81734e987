"""`kubelite service`, `kubelite kubectl` and `kubelite logs` as a user runs them, against a real
in-process server (its data dir holds the admin kubeconfig, as `kubelite start`'s does).

No kubelets here: the tests create a Ready Node with an InternalIP and the EndpointSlices a
controller would, through the API. Addresses are data only (nothing connects to them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.cli.main import main
from kubelite.client import Client, Connection
from kubelite.client.resources import ENDPOINTSLICES, NODES, SERVICES
from tests.integration.conftest import ServerThread
from tests.support import LineReader

KUBELITE = [sys.executable, "-m", "kubelite.cli.main"]
READY_NODE_IP = "198.18.250.11"
NOT_READY_NODE_IP = "198.18.250.10"

Obj = dict[str, Any]


class Cluster:
    """A server running the LoadBalancer allocator, and an API client on its loop."""

    def __init__(self, data_dir: Path) -> None:
        self.srv = ServerThread(data_dir, controllers="loadbalancer").start()
        assert self.srv.runtime.socket_path is not None
        self.client = Client(Connection.unix(self.srv.runtime.socket_path))
        self.data_dir = data_dir

    def api(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.srv.call(getattr(self.client, method)(*args, **kwargs))

    def stop(self) -> None:
        self.srv.call(self.client.close())
        self.srv.stop()

    def node(self, name: str, ip: str, *, ready: bool) -> None:
        self.api("create", NODES, {"metadata": {"name": name}})
        status = {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                  "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                  "reason": "KubeletReady" if ready else "KubeletNotReady"}]}
        self.api("patch", NODES, name, {"status": status}, subresource="status")

    def service(self, ns: str, name: str, *, type_: str, ports: list[Obj] | None = None) -> Obj:
        ports = ports or [{"name": "http", "port": 80, "targetPort": 8080}]
        body = {"metadata": {"name": name}, "spec": {"type": type_, "selector": {"app": name}, "ports": ports}}
        created: Obj = self.api("create", SERVICES, body, ns)
        return created

    def endpoint(self, ns: str, service: str, ip: str = "198.18.251.5", *, ready: bool = True) -> None:
        body = {"metadata": {"name": f"{service}-{uuid.uuid4().hex[:5]}",
                             "labels": {"kubernetes.io/service-name": service}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}]}
        self.api("create", ENDPOINTSLICES, body, ns)

    def namespace(self) -> str:
        name = f"cli-{uuid.uuid4().hex[:8]}"
        self.srv.kubectl("create", "namespace", name)
        return name


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cli-commands"))
    try:
        # by name, the not-Ready node comes first: the URL must skip it
        c.node("cli-node-0", NOT_READY_NODE_IP, ready=False)
        c.node("cli-node-1", READY_NODE_IP, ready=True)
        yield c
    finally:
        c.stop()


def kubelite(*args: str, capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capfd.readouterr()
    return code, out, err


# ----- kubelite service ----------------------------------------------------------------------------

def test_service_url_of_a_nodeport_service(cluster: Cluster, capfd: pytest.CaptureFixture[str]) -> None:
    ns = cluster.namespace()
    svc = cluster.service(ns, "web", type_="NodePort", ports=[
        {"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443, "targetPort": 8443}])
    node_ports = [p["nodePort"] for p in svc["spec"]["ports"]]
    cluster.endpoint(ns, "web")
    code, out, err = kubelite("service", "web", "-n", ns, "--url", "--data-dir", str(cluster.data_dir),
                              capfd=capfd)
    assert code == 0, err
    assert out.splitlines() == [f"http://{READY_NODE_IP}:{port}" for port in node_ports]
    code, out, _ = kubelite("service", "web", "-n", ns, "--url", "--https", "--data-dir",
                            str(cluster.data_dir), capfd=capfd)
    assert out.splitlines()[0] == f"https://{READY_NODE_IP}:{node_ports[0]}"


def test_service_table_and_no_browser_without_a_display(cluster: Cluster, capfd: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    ns = cluster.namespace()
    port = cluster.service(ns, "hello", type_="NodePort")["spec"]["ports"][0]["nodePort"]
    cluster.endpoint(ns, "hello")
    code, out, err = kubelite("service", "hello", "-n", ns, "--data-dir", str(cluster.data_dir), capfd=capfd)
    assert code == 0, err
    url = f"http://{READY_NODE_IP}:{port}"
    assert len(ns) == 12 and len(url) == 26  # the column widths below
    rule = f"|{'-' * 14}|-------|-------------|{'-' * 28}|"
    assert out.splitlines() == [
        rule,
        f"|  NAMESPACE   | NAME  | TARGET PORT | {' ' * 11}URL{' ' * 12} |",
        rule,
        f"| {ns} | hello | http/80     | {url} |",
        rule,
        f"* no browser: open {url}",
    ]


def test_service_url_of_a_loadbalancer_comes_first(cluster: Cluster, capfd: pytest.CaptureFixture[str]) -> None:
    ns = cluster.namespace()
    svc = cluster.service(ns, "front", type_="LoadBalancer")
    cluster.endpoint(ns, "front")
    code, out, err = kubelite("service", "front", "-n", ns, "--url", "--data-dir", str(cluster.data_dir),
                              capfd=capfd)
    assert code == 0, err
    ingress = cluster.api("get", SERVICES, "front", ns)["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert ingress.startswith("198.19.200.")  # the server's default LoadBalancer pool
    assert out.splitlines() == [f"http://{ingress}:80",
                                f"http://{READY_NODE_IP}:{svc['spec']['ports'][0]['nodePort']}"]


def test_service_waits_for_a_ready_endpoint(cluster: Cluster) -> None:
    ns = cluster.namespace()
    port = cluster.service(ns, "slow", type_="NodePort")["spec"]["ports"][0]["nodePort"]
    proc = subprocess.Popen([*KUBELITE, "service", "slow", "-n", ns, "--url", "--wait", "120",
                             "--data-dir", str(cluster.data_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        LineReader(proc.stderr).wait_for(rf"Waiting up to 120s for service {ns}/slow to have a ready endpoint")
        cluster.endpoint(ns, "slow")
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out == f"http://{READY_NODE_IP}:{port}\n"


def test_service_without_a_ready_endpoint_fails_after_the_wait(cluster: Cluster,
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    ns = cluster.namespace()
    cluster.service(ns, "idle", type_="NodePort")
    cluster.endpoint(ns, "idle", ready=False)
    code, out, err = kubelite("service", "idle", "-n", ns, "--url", "--wait", "0", "--data-dir",
                              str(cluster.data_dir), capfd=capfd)
    assert code == 1 and out == ""
    assert f"error: service {ns}/idle has no ready endpoint after 0s" in err
    assert "get pods,endpointslices" in err


def test_service_of_type_clusterip_has_no_node_port(cluster: Cluster, capfd: pytest.CaptureFixture[str]) -> None:
    ns = cluster.namespace()
    cluster.service(ns, "internal", type_="ClusterIP")
    code, out, err = kubelite("service", "internal", "-n", ns, "--data-dir", str(cluster.data_dir), capfd=capfd)
    assert code == 1 and out == ""
    assert f"error: service {ns}/internal has no node port" in err
    assert "--type=NodePort" in err and f"port-forward -n {ns} service/internal" in err


def test_service_not_found(cluster: Cluster, capfd: pytest.CaptureFixture[str]) -> None:
    ns = cluster.namespace()
    code, out, err = kubelite("service", "nope", "-n", ns, "--data-dir", str(cluster.data_dir), capfd=capfd)
    assert code == 1 and out == ""
    assert f'error: service "nope" not found in namespace "{ns}"' in err
    assert "Traceback" not in err


def test_service_without_a_cluster(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = kubelite("service", "web", "--data-dir", str(tmp_path), capfd=capfd)
    assert code == 1
    assert f"error: no cluster in {tmp_path}" in err and "kubelite start" in err


# ----- kubelite kubectl ----------------------------------------------------------------------------

def run_kubectl(srv: ServerThread, tmp_path: Path, *args: str, input: str | None = None,
                ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "absent")}
    return subprocess.run([*KUBELITE, "kubectl", "--data-dir", str(srv.config.data_dir), "--", *args],
                          capture_output=True, text=True, env=env, input=input, timeout=60)


def test_kubectl_runs_against_the_cluster(server: ServerThread, tmp_path: Path) -> None:
    result = run_kubectl(server, tmp_path, "get", "ns")
    assert result.returncode == 0, result.stderr
    names = {line.split()[0] for line in result.stdout.splitlines()[1:]}
    assert {"default", "kube-system"} <= names


def test_kubectl_exit_code_and_stdin_pass_through(server: ServerThread, tmp_path: Path) -> None:
    missing = run_kubectl(server, tmp_path, "get", "pod", "nope")
    assert missing.returncode == 1
    assert 'pods "nope" not found' in missing.stderr
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = run_kubectl(server, tmp_path, "create", "-f", "-", "-o", "name",
                          input=f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: default}}\n")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == f"configmap/{name}"
    server.kubectl("delete", "configmap", name, "-n", "default")


def test_kubectl_keeps_a_kubeconfig_the_user_gave(server: ServerThread, tmp_path: Path) -> None:
    result = run_kubectl(server, tmp_path, f"--kubeconfig={tmp_path / 'theirs'}", "get", "ns")
    assert result.returncode == 1
    assert str(tmp_path / "theirs") in result.stderr  # kubectl read theirs, not ours


def test_kubectl_without_a_cluster(tmp_path: Path) -> None:
    result = subprocess.run([*KUBELITE, "kubectl", "--data-dir", str(tmp_path), "--", "get", "ns"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"error: no cluster in {tmp_path}" in result.stderr


# ----- kubelite logs -------------------------------------------------------------------------------

@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "server.log").write_text("".join(f"server {i}\n" for i in range(1, 101)))
    (tmp_path / "logs" / "node-kubelite-1.log").write_text("node a\nnode b\nnode c\n")
    return tmp_path


def test_logs_of_every_component_with_headers(logs_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = kubelite("logs", "-n", "2", "--data-dir", str(logs_dir), capfd=capfd)
    assert code == 0
    server_log, node_log = logs_dir / "logs" / "server.log", logs_dir / "logs" / "node-kubelite-1.log"
    assert out.splitlines() == [f"==> server ({server_log}, 992 B) <==", "server 99", "server 100", "",
                                f"==> node-kubelite-1 ({node_log}, 21 B) <==", "node b", "node c", ""]


def test_logs_list_and_one_component(logs_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = kubelite("logs", "--list", "--data-dir", str(logs_dir), capfd=capfd)
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["COMPONENT", "SIZE", "LOG"], ["server", "992", "B", str(logs_dir / "logs" / "server.log")],
        ["node-kubelite-1", "21", "B", str(logs_dir / "logs" / "node-kubelite-1.log")]]
    code, out, _ = kubelite("logs", "server", "--data-dir", str(logs_dir), capfd=capfd)
    assert out.splitlines() == [f"server {i}" for i in range(41, 101)]  # the default 60 lines
    code, out, _ = kubelite("logs", "node-kubelite-1", "-n", "-1", "--data-dir", str(logs_dir), capfd=capfd)
    assert out == "node a\nnode b\nnode c\n"


def test_logs_of_an_unknown_component(logs_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = kubelite("logs", "agent", "--data-dir", str(logs_dir), capfd=capfd)
    assert code == 1 and out == ""
    assert err == "error: unknown component 'agent'; known: server, node-kubelite-1\n"
    code, _, err = kubelite("logs", "--data-dir", str(logs_dir / "elsewhere"), capfd=capfd)
    assert code == 1 and "no daemon logs in" in err and "kubelite start" in err


def test_logs_follow_appends_rotation_and_truncation(logs_dir: Path) -> None:
    log = logs_dir / "logs" / "server.log"
    proc = subprocess.Popen([*KUBELITE, "logs", "server", "-f", "-n", "1", "--data-dir", str(logs_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = LineReader(proc.stdout), LineReader(proc.stderr)
        out.wait_for(r"^server 100$")
        with log.open("a") as f:
            f.write("appended\n")
        out.wait_for(r"^appended$")
        log.rename(logs_dir / "server.log.1")  # rotation: a new file under the same name
        log.write_text("rotated\n")
        out.wait_for(r"^rotated$")
        log.write_text("")  # truncation
        err.wait_for(r"server.log: file truncated")
        log.write_text("after truncation\n")
        out.wait_for(r"^after truncation$")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0  # Ctrl-C ends following quietly
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

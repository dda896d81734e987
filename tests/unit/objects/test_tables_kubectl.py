"""The real kubectl renders our Tables: a tiny aiohttp API server answers discovery and lists with
`to_table(...)`, and `kubectl get` output is checked line by line."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kubelite.objects.registry import REGISTRY, ResourceType
from kubelite.objects.tables import to_table

KUBECTL = Path("/work/venv/bin/kubectl")
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
SERVED = {("", "pods"), ("", "services"), ("", "nodes"), ("apps", "deployments")}

pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl binary not installed")


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, age: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "10",
            "creationTimestamp": ago(age), **extra}


def _running(name: str, restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "ready": True, "restartCount": restarts, "state": {"running": {"startedAt": ago(60)}}}


PODS = [
    {"metadata": meta("crashy", 3 * 86400), "spec": {"nodeName": "node-1", "containers": [{"name": "app"}]},
     "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.7"}], "containerStatuses": [
         {"name": "app", "ready": False, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
          "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(300)}}}]}},
    {"metadata": meta("web", 7200), "spec": {"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}]},
     "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.8"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [_running("a"), _running("b")]}},
    {"metadata": meta("setup", 45), "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}],
                                             "containers": [{"name": "app"}]},
     "status": {"phase": "Pending", "initContainerStatuses": [
         {"name": "i1", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
         {"name": "i2", "ready": False, "restartCount": 0, "state": {"running": {}}}]}},
]
DEPLOYMENTS = [
    {"metadata": meta("web", 86400 * 10), "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                                                   "template": {"spec": {"containers": [
                                                       {"name": "nginx", "image": "nginx:1.27"}]}}},
     "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}},
]
SERVICES = [
    {"metadata": meta("kubernetes", 86400 * 10), "spec": {
        "type": "ClusterIP", "clusterIPs": ["10.96.0.1"], "ports": [{"port": 443, "protocol": "TCP"}]}},
    {"metadata": meta("lb", 600), "spec": {
        "type": "LoadBalancer", "clusterIPs": ["10.96.0.50"], "selector": {"app": "web"},
        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}},
    {"metadata": meta("np", 600), "spec": {
        "type": "NodePort", "clusterIPs": ["10.96.0.51"], "ports": [{"port": 80, "nodePort": 30081}]}},
]
NODES = [
    {"metadata": {"name": "node-1", "creationTimestamp": ago(86400 * 30),
                  "labels": {"node-role.kubernetes.io/control-plane": ""}},
     "spec": {"unschedulable": True},
     "status": {"conditions": [{"type": "Ready", "status": "False"}],
                "nodeInfo": {"kubeletVersion": "v1.37.0"}}},
]
OBJECTS: dict[str, list[dict[str, Any]]] = {"pods": PODS, "deployments": DEPLOYMENTS, "services": SERVICES, "nodes": NODES}


def _resource_list(group: str, version: str) -> dict[str, Any]:
    resources = [
        {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
         "verbs": list(r.verbs), "shortNames": list(r.short_names), "categories": list(r.categories)}
        for r in REGISTRY.in_group_version(group, version) if (group, r.plural) in SERVED
    ]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}".lstrip("/"),
            "resources": resources}


@dataclass
class FakeServer:
    port: int
    accepts: list[str] = field(default_factory=list)


def _list_response(request: web.Request, rt: ResourceType) -> web.Response:
    objects = OBJECTS[rt.plural]
    if name := request.match_info.get("name"):
        objects = [o for o in objects if o["metadata"]["name"] == name]
    accept = request.headers.get("Accept", "")
    if "as=Table" not in accept:
        return web.json_response({"kind": rt.list_kind, "apiVersion": rt.api_version,
                                  "metadata": {"resourceVersion": "10"}, "items": objects})
    table = to_table(rt, objects, resource_version="10",
                     include_object=request.query.get("includeObject", "Metadata"), now=NOW)
    return web.json_response(table)


def _app(server: FakeServer) -> web.Application:
    async def version(_: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "37", "gitVersion": "v1.37.0", "platform": "linux/amd64"})

    async def api(_: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{server.port}"}]})

    async def apis(_: web.Request) -> web.Response:
        gv = {"groupVersion": "apps/v1", "version": "v1"}
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": "apps", "versions": [gv], "preferredVersion": gv}]})

    async def core_v1(_: web.Request) -> web.Response:
        return web.json_response(_resource_list("", "v1"))

    async def apps_v1(_: web.Request) -> web.Response:
        return web.json_response(_resource_list("apps", "v1"))

    async def listing(request: web.Request) -> web.Response:
        group = request.match_info.get("group", "")
        rt = REGISTRY.by_path(group, "v1", request.match_info["plural"])
        if rt is None or (group, rt.plural) not in SERVED:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "reason": "NotFound", "code": 404}, status=404)
        server.accepts.append(request.headers.get("Accept", ""))
        return _list_response(request, rt)

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_get("/api", api)
    app.router.add_get("/apis", apis)
    app.router.add_get("/api/v1", core_v1)
    app.router.add_get("/apis/apps/v1", apps_v1)
    app.router.add_get("/api/v1/namespaces/{ns}/{plural}", listing)
    app.router.add_get("/api/v1/namespaces/{ns}/{plural}/{name}", listing)
    app.router.add_get("/api/v1/{plural}", listing)
    app.router.add_get("/apis/{group}/v1/namespaces/{ns}/{plural}", listing)
    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    fake = FakeServer(port=_free_port())
    runner = web.AppRunner(_app(fake))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", fake.port).start()
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
def kubeconfig(tmp_path: Path, server: FakeServer) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: t\n  cluster:\n    server: http://127.0.0.1:{server.port}\n"
        "users:\n- name: u\n  user: {}\n"
        "contexts:\n- name: c\n  context:\n    cluster: t\n    user: u\n    namespace: default\n"
        "current-context: c\n"
    )
    return path


async def kubectl(kubeconfig: Path, *args: str) -> list[list[str]]:
    """Run `kubectl get ...`; the output split into lines of cells (columns are 3+ spaces apart)."""
    home = kubeconfig.parent
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)}
    proc = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--kubeconfig", str(kubeconfig), "--cache-dir", str(home / "cache"), "get", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return [re.split(r"\s{2,}", line.strip()) for line in out.decode().splitlines()]


async def test_get_pods(server: FakeServer, kubeconfig: Path) -> None:
    assert await kubectl(kubeconfig, "pods") == [
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ["crashy", "0/1", "CrashLoopBackOff", "2 (5m ago)", "3d"],
        ["web", "2/2", "Running", "0", "120m"],
        ["setup", "0/1", "Init:1/2", "0", "45s"],
    ]
    assert server.accepts and all("as=Table;v=v1;g=meta.k8s.io" in a for a in server.accepts)


async def test_get_pods_wide(server: FakeServer, kubeconfig: Path) -> None:
    assert await kubectl(kubeconfig, "pods", "-o", "wide") == [
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        ["crashy", "0/1", "CrashLoopBackOff", "2 (5m ago)", "3d", "10.244.0.7", "node-1", "<none>", "<none>"],
        ["web", "2/2", "Running", "0", "120m", "10.244.0.8", "node-1", "<none>", "<none>"],
        ["setup", "0/1", "Init:1/2", "0", "45s", "<none>", "<none>", "<none>", "<none>"],
    ]


async def test_get_pods_header_layout(server: FakeServer, kubeconfig: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(kubeconfig.parent)}
    proc = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "pods", "setup",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    # A single-object GET answers a one-row Table; kubectl pads columns with three spaces.
    assert out.decode().splitlines()[0] == "NAME    READY   STATUS     RESTARTS   AGE"


async def test_get_deployments(server: FakeServer, kubeconfig: Path) -> None:
    assert await kubectl(kubeconfig, "deploy") == [
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        ["web", "2/3", "3", "2", "10d"],
    ]
    assert await kubectl(kubeconfig, "deploy", "-o", "wide") == [
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        ["web", "2/3", "3", "2", "10d", "nginx", "nginx:1.27", "app=web"],
    ]


async def test_get_services(server: FakeServer, kubeconfig: Path) -> None:
    assert await kubectl(kubeconfig, "svc") == [
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP", "10d"],
        ["lb", "LoadBalancer", "10.96.0.50", "<pending>", "80:30080/TCP", "10m"],
        ["np", "NodePort", "10.96.0.51", "<none>", "80:30081/TCP", "10m"],
    ]


async def test_get_nodes_wide(server: FakeServer, kubeconfig: Path) -> None:
    assert await kubectl(kubeconfig, "nodes", "-o", "wide") == [
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE",
         "KERNEL-VERSION", "CONTAINER-RUNTIME"],
        ["node-1", "NotReady,SchedulingDisabled", "control-plane", "30d", "v1.37.0", "<none>", "<none>",
         "<unknown>", "<unknown>", "<unknown>"],
    ]

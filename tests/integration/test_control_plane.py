"""The control plane end to end on hollow nodes, through the real kubectl: the tutorial's
Deployment story (create, scale, update, rollout status/history/undo, pause/resume, expose) with
every controller and the scheduler running, and three hollow kubelets running the pods."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubelite.agent.config import KubeletConfig
from kubelite.agent.hollow import HollowNodes
from kubelite.client import Client, Connection
from tests.integration.conftest import ServerThread

TIMEOUT = 30.0


class Cluster:
    def __init__(self, server: ServerThread, nodes: HollowNodes, client: Client) -> None:
        self.server, self.nodes, self.client = server, nodes, client

    def kubectl(self, *args: str, **kw: Any) -> str:
        return self.server.kubectl(*args, **kw).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    server = ServerThread(tmp_path_factory.mktemp("control-plane"), controllers="*", scheduler=True,
                          advertise_address="198.19.128.1").start()
    assert server.runtime.socket_path is not None
    client = Client(Connection.unix(server.runtime.socket_path))
    nodes = HollowNodes(client, 3, config=KubeletConfig(renew_interval=2.0))
    server.call(nodes.start())
    try:
        yield Cluster(server, nodes, client)
    finally:
        server.call(nodes.stop())
        server.call(client.close())
        server.stop()


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = f"cp-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    return name


def until(predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def until_output(produce: Callable[[], str], accept: Callable[[str], bool], what: str) -> str:
    """Poll `produce` until its output satisfies `accept`; return that output."""
    return str(until(lambda: (out if accept(out := produce()) else None), what))


def running_pods(cluster: Cluster, ns: str, selector: str) -> list[dict]:
    pods = cluster.json("pods", "-n", ns, "-l", selector)["items"]
    return [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


def test_nodes_are_ready(cluster: Cluster) -> None:
    out = until_output(lambda: cluster.kubectl("get", "nodes"), lambda o: o.count(" Ready ") == 3,
                       "3 Ready nodes")
    assert re.search(r"hollow-0\s+Ready\s+<none>\s+\S+\s+v1\.37\.0", out), out
    wide = cluster.kubectl("get", "nodes", "-o", "wide")
    assert "fake://1.0" in wide and "198.19.128." in wide


def test_deployment_story(cluster: Cluster, ns: str) -> None:
    k = cluster.kubectl
    assert k("-n", ns, "create", "deployment", "hello", "--image=bootcamp:v1", "--replicas=3").strip() == \
        "deployment.apps/hello created"
    assert 'deployment "hello" successfully rolled out' in k("-n", ns, "rollout", "status", "deployment/hello",
                                                             "--timeout=60s")
    pods = running_pods(cluster, ns, "app=hello")
    assert len(pods) == 3
    assert len({p["spec"]["nodeName"] for p in pods}) == 3, "replicas spread over the three nodes"
    assert all(p["status"]["podIP"].startswith("198.18.") for p in pods)
    assert re.search(r"hello\s+3/3\s+3\s+3", k("-n", ns, "get", "deployments"))

    k("-n", ns, "scale", "deployments/hello", "--replicas=5")
    k("-n", ns, "rollout", "status", "deployment/hello", "--timeout=60s")
    until(lambda: len(running_pods(cluster, ns, "app=hello")) == 5, "5 running pods")

    assert k("-n", ns, "set", "image", "deployments/hello", "bootcamp=bootcamp:v2").strip() == \
        "deployment.apps/hello image updated"
    k("-n", ns, "rollout", "status", "deployment/hello", "--timeout=60s")
    images = {p["spec"]["containers"][0]["image"] for p in running_pods(cluster, ns, "app=hello")}
    until(lambda: {p["spec"]["containers"][0]["image"] for p in running_pods(cluster, ns, "app=hello")}
          == {"bootcamp:v2"}, "only v2 pods")
    assert images <= {"bootcamp:v1", "bootcamp:v2"}
    history = k("-n", ns, "rollout", "history", "deployment/hello")
    assert re.search(r"^1\s+<none>$", history, re.M) and re.search(r"^2\s+<none>$", history, re.M)

    assert "rolled back" in k("-n", ns, "rollout", "undo", "deployment/hello")
    k("-n", ns, "rollout", "status", "deployment/hello", "--timeout=60s")
    deploy = cluster.json("-n", ns, "deployment", "hello")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "bootcamp:v1"
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert len(cluster.json("-n", ns, "replicasets", "-l", "app=hello")["items"]) == 2  # v1's RS was reused

    k("-n", ns, "rollout", "undo", "deployment/hello", "--to-revision=2")
    k("-n", ns, "rollout", "status", "deployment/hello", "--timeout=60s")
    deploy = cluster.json("-n", ns, "deployment", "hello")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "bootcamp:v2"

    k("-n", ns, "rollout", "pause", "deployment/hello")
    k("-n", ns, "set", "image", "deployments/hello", "bootcamp=bootcamp:v3")
    time.sleep(1.0)
    assert len(cluster.json("-n", ns, "replicasets", "-l", "app=hello")["items"]) == 2, "paused: no new RS"
    k("-n", ns, "rollout", "resume", "deployment/hello")
    k("-n", ns, "rollout", "status", "deployment/hello", "--timeout=60s")
    until(lambda: {p["spec"]["containers"][0]["image"] for p in running_pods(cluster, ns, "app=hello")}
          == {"bootcamp:v3"}, "only v3 pods")

    described = k("-n", ns, "describe", "deployment", "hello")
    assert "ScalingReplicaSet" in described and "Scaled up replica set hello-" in described
    pod = running_pods(cluster, ns, "app=hello")[0]["metadata"]["name"]
    described_pod = k("-n", ns, "describe", "pod", pod)
    assert "Successfully assigned" in described_pod and "Node:" in described_pod


def test_expose_services_get_endpoints_and_load_balancer_address(cluster: Cluster, ns: str) -> None:
    k = cluster.kubectl
    k("-n", ns, "create", "deployment", "web", "--image=web:1", "--replicas=2", "--port=8080")
    k("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    k("-n", ns, "expose", "deployment/web", "--type=NodePort", "--port=8080")
    ips = sorted(p["status"]["podIP"] for p in running_pods(cluster, ns, "app=web"))
    endpoints = until_output(lambda: k("-n", ns, "get", "endpoints", "web"),
                             lambda o: all(ip in o for ip in ips), "endpoints of both pods")
    assert all(f"{ip}:8080" in endpoints for ip in ips)
    k("-n", ns, "expose", "deployment/web", "--name=web-lb", "--type=LoadBalancer", "--port=8080")
    lb = until_output(lambda: k("-n", ns, "get", "svc", "web-lb"), lambda o: "198.19.200." in o,
                      "a LoadBalancer address")
    assert re.search(r"web-lb\s+LoadBalancer\s+198\.19\.\d+\.\d+\s+198\.19\.200\.\d+\s+8080:3\d{4}/TCP", lb), lb
    k("-n", ns, "scale", "deployment/web", "--replicas=0")
    until(lambda: "<none>" in k("-n", ns, "get", "endpoints", "web"), "no endpoints at zero replicas")


def test_cascading_deletes_and_namespace_deletion(cluster: Cluster, ns: str) -> None:
    k = cluster.kubectl
    for name in ("bg", "orph", "fg"):
        k("-n", ns, "create", "deployment", name, "--image=x:1", "--replicas=2")
    for name in ("bg", "orph", "fg"):
        k("-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=60s")
    k("-n", ns, "delete", "deployment", "bg")  # background, kubectl waits for the deployment only
    until(lambda: not cluster.json("-n", ns, "pods", "-l", "app=bg")["items"], "bg pods gone")
    assert not cluster.json("-n", ns, "rs", "-l", "app=bg")["items"]
    k("-n", ns, "delete", "deployment", "orph", "--cascade=orphan")
    rs = until(lambda: [r for r in cluster.json("-n", ns, "rs", "-l", "app=orph")["items"]
                        if not r["metadata"].get("ownerReferences")], "orphaned RS")
    assert len(rs) == 1 and len(running_pods(cluster, ns, "app=orph")) == 2
    k("-n", ns, "delete", "deployment", "fg", "--cascade=foreground")  # waits until everything is gone
    assert not cluster.json("-n", ns, "rs", "-l", "app=fg")["items"]
    assert not cluster.json("-n", ns, "pods", "-l", "app=fg")["items"]
    assert f'namespace "{ns}" deleted' in k("delete", "namespace", ns, "--timeout=60s")
    assert k("get", "namespace", ns, check=False) == ""


def test_unschedulable_pod_reports_why_then_schedules(cluster: Cluster, ns: str) -> None:
    k = cluster.kubectl
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big"},
           "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "64"}}}]}}
    k("-n", ns, "create", "-f", "-", input=json.dumps(pod))
    events = until_output(lambda: k("-n", ns, "describe", "pod", "big"), lambda o: "FailedScheduling" in o,
                          "FailedScheduling")
    assert "0/3 nodes are available: 3 Insufficient cpu." in events
    k("-n", ns, "delete", "pod", "big", "--wait=false")

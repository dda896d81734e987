"""The scheduler in a real server: Node objects made through the client, pods made with the real
kubectl, and placements, spreading, FailedScheduling events and conditions checked through the API
and `kubectl describe`."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubelite.client import Client, Connection
from kubelite.client.resources import EVENTS, NODES, PODS
from tests.integration.conftest import ServerThread

Obj = dict[str, Any]
CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def node(name: str, *, cpu: str = "4", memory: str = "8Gi", labels: Obj | None = None,
         taints: list[Obj] | None = None, unschedulable: bool = False) -> Obj:
    resources = {"cpu": cpu, "memory": memory, "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"capacity": resources, "allocatable": resources,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


NODES_AT_START = [
    node("worker-1", labels={"pool": "general", "disk": "ssd"}),
    node("worker-2", labels={"pool": "general"}),
    node("control-plane", labels={"pool": "general"}, taints=[CONTROL_PLANE]),
    node("cordoned", labels={"pool": "general"}, unschedulable=True),
    node("spread-a", cpu="2", labels={"pool": "spread"}),
    node("spread-b", cpu="2", labels={"pool": "spread"}),
    node("spread-c", cpu="2", labels={"pool": "spread"}),
]


class Cluster:
    def __init__(self, srv: ServerThread) -> None:
        self.srv = srv
        self.client = Client(Connection.unix(srv.runtime.socket_path))

    def run(self, coro: Any) -> Any:
        return self.srv.call(coro)

    def pod(self, ns: str, name: str) -> Obj:
        return self.run(self.client.get(PODS, name, ns))  # type: ignore[no-any-return]

    def pods(self, ns: str) -> list[Obj]:
        return self.run(self.client.list(PODS, ns))["items"]  # type: ignore[no-any-return]

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def node_of(self, ns: str, name: str) -> str:
        return self.wait(f"{ns}/{name} to be bound",  # type: ignore[no-any-return]
                         lambda: self.pod(ns, name)["spec"].get("nodeName"))

    def apply(self, ns: str, manifest: Obj) -> None:
        self.srv.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    srv = ServerThread(tmp_path_factory.mktemp("scheduler"), controllers="", scheduler=True).start()
    c = Cluster(srv)
    try:
        for n in NODES_AT_START:
            c.run(c.client.create(NODES, n))
        yield c
    finally:
        c.run(c.client.close())
        srv.stop()


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    cluster.srv.kubectl("create", "namespace", name)
    return name


def pod_manifest(name: str, *, spec: Obj | None = None, requests: Obj | None = None, ports: list[Obj] | None = None,
                 owner: Obj | None = None) -> Obj:
    container: Obj = {"name": "app", "image": "docker.io/kubelite/pause:3.10"}
    if requests:
        container["resources"] = {"requests": requests}
    if ports:
        container["ports"] = ports
    meta: Obj = {"name": name}
    if owner:
        meta["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [container], **(spec or {})}}


GENERAL = {"nodeSelector": {"pool": "general"}}


def test_kubectl_run_is_bound_to_a_schedulable_untainted_node(cluster: Cluster, ns: str) -> None:
    for i in range(4):
        cluster.srv.kubectl("run", f"web-{i}", "-n", ns, "--image=docker.io/kubelite/pause:3.10",
                            "--overrides", json.dumps({"spec": GENERAL}))
    placed = {cluster.node_of(ns, f"web-{i}") for i in range(4)}
    assert placed <= {"worker-1", "worker-2"}
    pod = cluster.pod(ns, "web-0")
    events = cluster.wait("the Scheduled event", lambda: [
        e for e in cluster.run(cluster.client.list(EVENTS, ns))["items"]
        if e["reason"] == "Scheduled" and e["involvedObject"]["name"] == "web-0"])
    assert events[0]["message"] == f"Successfully assigned {ns}/web-0 to {pod['spec']['nodeName']}"
    assert events[0]["source"]["component"] == "default-scheduler"


def test_node_selector_affinity_and_tolerations(cluster: Cluster, ns: str) -> None:
    cluster.apply(ns, pod_manifest("ssd", spec={"nodeSelector": {"disk": "ssd"}}))
    cluster.apply(ns, pod_manifest("not-worker-1", spec={"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["general"]},
            {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["worker-1"]}]}]}}}}))
    cluster.apply(ns, pod_manifest("prefers-ssd", spec={**GENERAL, "affinity": {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]}}}))
    cluster.apply(ns, pod_manifest("on-control-plane", spec={
        "nodeSelector": {"kubernetes.io/hostname": "control-plane"},
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                         "effect": "NoSchedule"}]}))
    assert cluster.node_of(ns, "ssd") == "worker-1"
    assert cluster.node_of(ns, "not-worker-1") == "worker-2"
    assert cluster.node_of(ns, "prefers-ssd") == "worker-1"
    assert cluster.node_of(ns, "on-control-plane") == "control-plane"


def test_resource_requests_pick_the_node_that_fits(cluster: Cluster, ns: str) -> None:
    # spread nodes have 2 cpus, workers 4: a 3-cpu pod fits a worker only
    cluster.apply(ns, pod_manifest("three-cpus", requests={"cpu": "3", "memory": "1Gi"},
                                   spec={"affinity": {"nodeAffinity": {
                                       "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                                           {"matchExpressions": [{"key": "pool", "operator": "Exists"}]}]}}}}))
    assert cluster.node_of(ns, "three-cpus") in ("worker-1", "worker-2")
    cluster.srv.kubectl("delete", "pod", "three-cpus", "-n", ns, "--wait=false")


def test_host_ports_conflict(cluster: Cluster, ns: str) -> None:
    port = [{"containerPort": 80, "hostPort": 18080}]
    for name in ("port-a", "port-b", "port-c"):
        cluster.apply(ns, pod_manifest(name, ports=port, spec=GENERAL))
    a, b = cluster.node_of(ns, "port-a"), cluster.node_of(ns, "port-b")
    assert {a, b} == {"worker-1", "worker-2"}
    reason = "node(s) didn't have free ports for the requested pod ports"
    message = cluster.wait("port-c to be unschedulable", lambda: _scheduled_condition(cluster.pod(ns, "port-c")))
    assert f"2 {reason}" in message["message"] and message["reason"] == "Unschedulable"
    cluster.srv.kubectl("delete", "pod", "port-a", "-n", ns, "--grace-period=0", "--force")
    assert cluster.node_of(ns, "port-c") == a  # the freed port lets it in


def _scheduled_condition(pod: Obj) -> Obj | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition["type"] == "PodScheduled" and condition["status"] == "False":
            return condition  # type: ignore[no-any-return]
    return None


def test_replicas_of_one_owner_spread_evenly(cluster: Cluster, ns: str) -> None:
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f", "uid": str(uuid.uuid4()),
             "controller": True, "blockOwnerDeletion": True}
    items = [pod_manifest(f"web-5d4f-{i}", owner=owner, requests={"cpu": "100m"},
                          spec={"nodeSelector": {"pool": "spread"}}) for i in range(6)]
    cluster.srv.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                        "items": items}))
    placed = [cluster.node_of(ns, f"web-5d4f-{i}") for i in range(6)]
    assert Counter(placed) == {"spread-a": 2, "spread-b": 2, "spread-c": 2}


def test_failed_scheduling_is_described_and_a_new_node_fixes_it(cluster: Cluster, ns: str) -> None:
    cluster.srv.kubectl("run", "waiting", "-n", ns, "--image=docker.io/kubelite/pause:3.10",
                        "--overrides", json.dumps({"spec": {"nodeSelector": {"pool": "late"}}}))
    expected = ("0/7 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
                "1 node(s) were unschedulable, 5 node(s) didn't match Pod's node affinity/selector. preemption: "
                "0/7 nodes are available: 7 Preemption is not helpful for scheduling.")
    condition = cluster.wait("PodScheduled=False", lambda: _scheduled_condition(cluster.pod(ns, "waiting")))
    assert condition["reason"] == "Unschedulable" and condition["message"] == expected
    described = cluster.wait("FailedScheduling in describe", lambda: (
        out if "FailedScheduling" in (out := cluster.srv.kubectl("describe", "pod", "waiting", "-n", ns).stdout)
        else None))
    line = next(line for line in described.splitlines() if "FailedScheduling" in line)
    assert "Warning" in line and "default-scheduler" in line and line.rstrip().endswith(expected)
    assert "PodScheduled   False" in described

    cluster.run(cluster.client.create(NODES, node("late-1", labels={"pool": "late"})))
    try:
        assert cluster.node_of(ns, "waiting") == "late-1"
    finally:
        cluster.srv.kubectl("delete", "pod", "waiting", "-n", ns, "--grace-period=0", "--force")
        cluster.run(cluster.client.delete(NODES, "late-1"))


def test_pods_for_other_schedulers_are_left_alone(cluster: Cluster, ns: str) -> None:
    cluster.apply(ns, pod_manifest("other", spec={"schedulerName": "my-scheduler", **GENERAL}))
    cluster.apply(ns, pod_manifest("mine", spec=GENERAL))
    cluster.node_of(ns, "mine")
    assert not cluster.pod(ns, "other")["spec"].get("nodeName")

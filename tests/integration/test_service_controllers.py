"""Endpoints, EndpointSlice and LoadBalancer controllers in a real server, seen through kubectl.

No scheduler and no kubelets: the tests play the kubelet themselves, creating pods already bound
to a node (`spec.nodeName`) and patching `pods/status` with an IP, phase Running and a Ready
condition.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kubelite.client import Client, Connection
from kubelite.client.resources import ENDPOINTS, ENDPOINTSLICES, NODES, PODS, SERVICES
from kubelite.cluster.server import ServerRuntime
from kubelite.objects.errors import NotFound
from tests import support
from tests.integration.conftest import ServerThread

CONTROLLERS = "endpoints,endpointslice,loadbalancer"
ADVERTISE = "198.19.128.1"  # not loopback: Endpoints may not point at 127.0.0.0/8
LB_POOL = ipaddress.ip_network("198.19.200.0/24")

Obj = dict[str, Any]


class Cluster:
    """A server with the service controllers, and a client on its loop to play the kubelet."""

    def __init__(self, data_dir: Path) -> None:
        self.srv = ServerThread(data_dir, controllers=CONTROLLERS)
        # the fixture advertises 127.0.0.1, which Endpoints validation rejects (as upstream's does)
        self.srv.config = dataclasses.replace(self.srv.config, advertise_address=ADVERTISE)
        self.srv.runtime = ServerRuntime(self.srv.config)
        self.client: Client | None = None

    def start(self) -> Cluster:
        self.srv.start()
        assert self.srv.runtime.socket_path is not None
        self.client = Client(Connection.unix(self.srv.runtime.socket_path))
        return self

    def stop(self) -> None:
        if self.client is not None:
            self.srv.call(self.client.close())
        self.srv.stop()

    def api(self, method: str, *args: Any, **kwargs: Any) -> Any:
        assert self.client is not None
        return self.srv.call(getattr(self.client, method)(*args, **kwargs))

    def kubectl(self, *args: str, **kwargs: Any) -> str:
        return self.srv.kubectl(*args, **kwargs).stdout

    def namespace(self) -> str:
        name = f"svc-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        return name

    # ----- playing the kubelet -----------------------------------------------------------------

    def pod(self, ns: str, name: str, *, labels: Obj, port: int = 8080, node: str = "n1") -> None:
        body = {"metadata": {"name": name, "labels": labels},
                "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx", "ports": [
                    {"name": "http", "containerPort": port}]}]}}
        self.api("create", PODS, body, ns)

    def status(self, ns: str, name: str, ip: str, *, ready: bool) -> None:
        status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                  "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
        self.api("patch", PODS, name, {"status": status}, ns, subresource="status")

    def get(self, rt: Any, name: str, ns: str) -> Obj | None:
        try:
            result: Obj = self.api("get", rt, name, ns)
            return result
        except NotFound:
            return None

    def slices(self, ns: str, service: str) -> list[Obj]:
        items: list[Obj] = self.api("list", ENDPOINTSLICES, ns,
                                    label_selector=f"kubernetes.io/service-name={service}")["items"]
        return items


wait_for = partial(support.wait_for, timeout=10.0, interval=0.02)


def addresses(endpoints: Obj | None, field: str = "addresses") -> list[str]:
    return sorted(a["ip"] for s in (endpoints or {}).get("subsets") or [] for a in s.get(field) or [])


def slice_conditions(slices: list[Obj]) -> dict[str, Obj]:
    return {e["targetRef"]["name"]: e["conditions"] for s in slices for e in s.get("endpoints") or []}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("service-controllers")).start()
    try:
        c.api("create", NODES, {"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "zone-a"}}})
        c.api("create", NODES, {"metadata": {"name": "n2"}})
        yield c
    finally:
        c.stop()


# ----- the kubernetes Service ---------------------------------------------------------------------

def test_kubernetes_service_points_at_the_api_server(cluster: Cluster) -> None:
    port = cluster.srv.config.port
    endpoints = wait_for(lambda: cluster.get(ENDPOINTS, "kubernetes", "default"), what="kubernetes endpoints")
    assert endpoints["subsets"] == [{"addresses": [{"ip": ADVERTISE}],
                                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    assert f"{ADVERTISE}:{port}" in cluster.kubectl("get", "endpoints", "kubernetes", "-n", "default")
    shown = cluster.kubectl("get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=kubernetes",
                            "-o", "json")
    [slice_] = json.loads(shown)["items"]
    assert slice_["metadata"]["name"] == "kubernetes"
    assert slice_["endpoints"] == [{"addresses": [ADVERTISE], "conditions": {"ready": True}}]
    # tampering is undone
    cluster.api("delete", ENDPOINTSLICES, "kubernetes", "default")
    wait_for(lambda: cluster.get(ENDPOINTSLICES, "kubernetes", "default"), what="kubernetes slice recreated")


# ----- Endpoints and EndpointSlices ---------------------------------------------------------------

def test_clusterip_service_follows_pod_readiness_and_deletion(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", "-n", ns)
    for name, ip in (("web-a", "10.42.0.11"), ("web-b", "10.42.0.12"), ("other", "10.42.0.13")):
        cluster.pod(ns, name, labels={"app": "web" if name != "other" else "db"}, node="n1" if name != "web-b" else "n2")
        cluster.status(ns, name, ip, ready=True)
    wait_for(lambda: addresses(cluster.get(ENDPOINTS, "web", ns)) == ["10.42.0.11", "10.42.0.12"], what="endpoints")
    row = cluster.kubectl("get", "endpoints", "web", "-n", ns, "--no-headers")
    assert "10.42.0.11:8080,10.42.0.12:8080" in row
    shown = json.loads(cluster.kubectl("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=web",
                                       "-o", "json"))["items"]
    assert len(shown) == 1 and shown[0]["metadata"]["name"].startswith("web-")
    assert shown[0]["ports"] == [{"name": "80-8080", "port": 8080, "protocol": "TCP"}]
    zones = {e["targetRef"]["name"]: e.get("zone") for e in shown[0]["endpoints"]}
    assert zones == {"web-a": "zone-a", "web-b": None}
    table = cluster.kubectl("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=web")
    assert "IPv4" in table and "8080" in table

    started = time.monotonic()
    cluster.status(ns, "web-b", "10.42.0.12", ready=False)
    wait_for(lambda: addresses(cluster.get(ENDPOINTS, "web", ns), "notReadyAddresses") == ["10.42.0.12"],
             what="web-b not ready in Endpoints")
    endpoints_seconds = time.monotonic() - started
    wait_for(lambda: slice_conditions(cluster.slices(ns, "web")).get("web-b", {}).get("ready") is False,
             what="web-b not ready in its slice")
    slice_seconds = time.monotonic() - started
    print(f"readiness change reflected: Endpoints {endpoints_seconds * 1000:.0f} ms, "
          f"EndpointSlice {slice_seconds * 1000:.0f} ms")
    assert addresses(cluster.get(ENDPOINTS, "web", ns)) == ["10.42.0.11"]
    assert [s["metadata"]["name"] for s in cluster.slices(ns, "web")] == [shown[0]["metadata"]["name"]]  # in place

    # graceful deletion: terminating leaves Endpoints, stays in the slice as terminating
    cluster.kubectl("delete", "pod", "web-a", "-n", ns, "--wait=false")
    wait_for(lambda: addresses(cluster.get(ENDPOINTS, "web", ns)) == [], what="web-a gone from Endpoints")
    terminating = wait_for(lambda: (c := slice_conditions(cluster.slices(ns, "web")).get("web-a")) and
                           c["terminating"] and c, what="web-a terminating in its slice")
    assert terminating == {"ready": False, "serving": True, "terminating": True}
    cluster.api("delete", PODS, "web-a", ns, grace_period=0)  # the kubelet finishes the deletion
    wait_for(lambda: "web-a" not in slice_conditions(cluster.slices(ns, "web")), what="web-a gone from slice")


def test_named_target_port_and_publish_not_ready_addresses(cluster: Cluster) -> None:
    ns = cluster.namespace()
    manifest = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": ns},
                "spec": {"selector": {"app": "api"}, "publishNotReadyAddresses": True,
                         "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    cluster.pod(ns, "api-1", labels={"app": "api"}, port=8080)
    cluster.pod(ns, "api-2", labels={"app": "api"}, port=9090)
    cluster.status(ns, "api-1", "10.42.1.1", ready=True)
    cluster.status(ns, "api-2", "10.42.1.2", ready=False)

    def by_port() -> list[tuple[int, list[str]]]:
        endpoints = cluster.get(ENDPOINTS, "api", ns) or {}
        return sorted((s["ports"][0]["port"], [a["ip"] for a in s.get("addresses") or []])
                      for s in endpoints.get("subsets") or [])

    wait_for(lambda: by_port() == [(8080, ["10.42.1.1"]), (9090, ["10.42.1.2"])], what="two subsets")
    slices = wait_for(lambda: len(s := cluster.slices(ns, "api")) == 2 and s, what="two slices")
    assert sorted(s["ports"][0]["port"] for s in slices) == [8080, 9090]
    assert slice_conditions(slices)["api-2"] == {"ready": True, "serving": False, "terminating": False}


def test_a_deleted_slice_is_replaced(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.kubectl("create", "service", "clusterip", "cache", "--tcp=6379:6379", "-n", ns)
    cluster.pod(ns, "cache-0", labels={"app": "cache"}, port=6379)
    cluster.status(ns, "cache-0", "10.42.2.1", ready=True)
    [old] = wait_for(lambda: (s := cluster.slices(ns, "cache")) and s[0].get("endpoints") and s, what="slice")
    cluster.api("delete", ENDPOINTSLICES, old["metadata"]["name"], ns)
    [new] = wait_for(lambda: (s := cluster.slices(ns, "cache")) and s[0].get("endpoints") and s, what="new slice")
    assert new["metadata"]["name"] != old["metadata"]["name"]
    assert [e["addresses"] for e in new["endpoints"]] == [["10.42.2.1"]]


def test_selectorless_and_external_name_services_are_left_alone(cluster: Cluster) -> None:
    ns = cluster.namespace()
    manual = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext", "namespace": ns},
              "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manual))
    cluster.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": ns},
        "spec": {"ports": [{"port": 5432}]}}))
    cluster.kubectl("create", "service", "externalname", "alias", "--external-name=example.com", "-n", ns)
    cluster.kubectl("create", "service", "clusterip", "marker", "--tcp=80:80", "-n", ns)
    wait_for(lambda: cluster.get(ENDPOINTS, "marker", ns), what="endpoints of a later service")
    wait_for(lambda: cluster.slices(ns, "marker"), what="slice of a later service")
    assert addresses(cluster.get(ENDPOINTS, "ext", ns)) == ["192.0.2.10"]
    assert cluster.get(ENDPOINTS, "alias", ns) is None
    assert cluster.slices(ns, "ext") == [] and cluster.slices(ns, "alias") == []
    # a service with no ready pods still gets (empty) Endpoints and a placeholder slice
    assert "<none>" in cluster.kubectl("get", "endpoints", "marker", "-n", ns)
    assert cluster.slices(ns, "marker")[0].get("endpoints") in (None, [])


def test_deleting_a_service_deletes_its_endpoints(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.kubectl("create", "service", "clusterip", "gone", "--tcp=80:80", "-n", ns)
    wait_for(lambda: cluster.get(ENDPOINTS, "gone", ns), what="endpoints")
    cluster.kubectl("delete", "service", "gone", "-n", ns)
    wait_for(lambda: cluster.get(ENDPOINTS, "gone", ns) is None, what="endpoints deleted")


# ----- LoadBalancer -------------------------------------------------------------------------------

def external_ip(cluster: Cluster, ns: str, name: str) -> str | None:
    columns = cluster.kubectl("get", "svc", name, "-n", ns, "--no-headers").split()
    return columns[3] if columns[3] != "<pending>" else None


def test_load_balancer_addresses_are_unique_and_released(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.kubectl("create", "service", "loadbalancer", "lb1", "--tcp=80:8080", "-n", ns)
    cluster.kubectl("create", "service", "loadbalancer", "lb2", "--tcp=80:8080", "-n", ns)
    ip1 = wait_for(lambda: external_ip(cluster, ns, "lb1"), what="lb1 EXTERNAL-IP")
    ip2 = wait_for(lambda: external_ip(cluster, ns, "lb2"), what="lb2 EXTERNAL-IP")
    assert ipaddress.ip_address(ip1) in LB_POOL and ipaddress.ip_address(ip2) in LB_POOL and ip1 != ip2
    service = cluster.get(SERVICES, "lb1", ns)
    assert service is not None and service["status"]["loadBalancer"]["ingress"] == [{"ip": ip1, "ipMode": "VIP"}]
    events = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=lb1")
    assert "IPAllocated" in events and "EnsuredLoadBalancer" in events

    # lb1's address is taken: a request for it waits; deleting lb1 frees it for the requester
    cluster.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb3", "namespace": ns},
        "spec": {"type": "LoadBalancer", "loadBalancerIP": ip1, "selector": {"app": "x"}, "ports": [{"port": 80}]}}))
    wait_for(lambda: "AllocationFailed" in cluster.kubectl("get", "events", "-n", ns, "--field-selector",
                                                           "involvedObject.name=lb3"), what="AllocationFailed")
    assert external_ip(cluster, ns, "lb3") is None
    cluster.kubectl("delete", "service", "lb1", "-n", ns)
    wait_for(lambda: external_ip(cluster, ns, "lb3") == ip1, what="lb3 gets the freed address")

    # no longer a LoadBalancer: status cleared, address back in the pool
    # (upstream's API drops the type-dependent fields itself; ours wants them removed explicitly)
    to_cluster_ip = {"spec": {"type": "ClusterIP", "allocateLoadBalancerNodePorts": None,
                              "externalTrafficPolicy": None,
                              "ports": [{"name": "80-8080", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}
    cluster.kubectl("patch", "service", "lb2", "-n", ns, "--type=merge", "-p", json.dumps(to_cluster_ip))
    wait_for(lambda: not ((cluster.get(SERVICES, "lb2", ns) or {}).get("status", {}).get("loadBalancer") or {})
             .get("ingress"), what="lb2 status cleared")


def test_load_balancer_addresses_survive_a_restart(tmp_path: Path) -> None:
    first = Cluster(tmp_path).start()
    try:
        first.kubectl("create", "service", "loadbalancer", "a", "--tcp=80:80")
        first.kubectl("create", "service", "loadbalancer", "b", "--tcp=80:80")
        before = {n: wait_for(lambda n=n: external_ip(first, "default", n), what=n) for n in ("a", "b")}
    finally:
        first.stop()
    second = Cluster(tmp_path).start()
    try:
        second.kubectl("create", "service", "loadbalancer", "c", "--tcp=80:80")
        ip_c = wait_for(lambda: external_ip(second, "default", "c"), what="c")
        assert ip_c not in before.values()
        assert {n: external_ip(second, "default", n) for n in ("a", "b")} == before
    finally:
        second.stop()

"""The nftables proxy on the wire (root): the model applied through nft.py in a node network
namespace with two httpd pods, a client pod and an external client (see proxy_fixtures.py), then
the Proxier against a real API server, then rule-apply timings for 100 / 1,000 / 5,000 Services.

"From the host" means from the node namespace: it is the node's host network."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.client import Client, Connection
from kubelite.client.resources import ENDPOINTSLICES, SERVICES
from kubelite.proxy.backends import NftBackend
from kubelite.proxy.model import NodeContext
from kubelite.proxy.proxier import Proxier
from kubelite.proxy.serviceports import Endpoint, ServicePort
from tests.e2e.proxy_fixtures import (
    BACKENDS,
    EXT,
    EXT_IP,
    GATEWAY,
    NODE,
    NODE_IP,
    PODS,
    SUBNET,
    VIP_RANGE,
    ProxyNet,
    in_ns,
    netns_name,
    require_host,
    sh,
)
from tests.integration.conftest import ServerThread

pytestmark = [pytest.mark.e2e]

Obj = dict[str, Any]
CTX = NodeContext("node-a", node_ips=(NODE_IP,), cluster_cidr=SUBNET, service_cidr=VIP_RANGE)
POD3 = netns_name("pod3")
WEB, EMPTY, STICKY, DNS, LOCAL = "198.19.250.10", "198.19.250.11", "198.19.250.12", "198.19.250.13", "198.19.250.14"
NO_DNS = "198.19.250.15"
WEB_LB, LOCAL_LB = "198.19.250.100", "198.19.250.101"


def svc(name: str, vip: str, *, backends: tuple[str, ...] = BACKENDS, protocol: str = "tcp", port: int = 80,
        **kw: Any) -> ServicePort:
    nodes = kw.pop("nodes", {})
    eps = tuple(Endpoint(PODS[p], port, nodes.get(p, "node-a")) for p in backends)
    return ServicePort("e2e", name, "p", protocol, vip, port, endpoints=eps, **kw)


def baseline() -> dict[str, list[ServicePort]]:
    return {
        "e2e/web": [svc("web", WEB, node_port=30080, lb_ips=(WEB_LB,))],
        "e2e/empty": [svc("empty", EMPTY, backends=(), node_port=30081)],
        "e2e/sticky": [svc("sticky", STICKY, affinity_timeout=60)],
        "e2e/dns": [svc("dns", DNS, protocol="udp", port=53)],
        "e2e/no-dns": [svc("no-dns", NO_DNS, backends=(), protocol="udp", port=53)],
        "e2e/local": [svc("local", LOCAL, node_port=30082, lb_ips=(LOCAL_LB,), external_local=True,
                          nodes={"pod2": "node-b"})],
    }


class Node:
    """The node namespace plus an NftBackend applying ServicePorts to it."""

    def __init__(self, net: ProxyNet) -> None:
        self.net = net
        self.backend = NftBackend(netns=NODE)
        self.services: dict[str, list[ServicePort]] = {}

    def apply(self, services: dict[str, list[ServicePort]]) -> None:
        dirty = {k for k in services.keys() | self.services.keys() if services.get(k) != self.services.get(k)}
        self.services = dict(services)
        asyncio.run(self.backend.sync(self.services, ctx=CTX, dirty=dirty))

    def names(self, url: str, count: int, *, ns: str = NODE) -> Counter[str]:
        return Counter(line.split()[0] for line in self.net.curl(ns, url, count=count))

    def table(self) -> str:
        return in_ns(NODE, "nft", "list", "ruleset").stdout


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    require_host()
    net = ProxyNet(tmp_path_factory.mktemp("proxy-net"))
    try:
        net.up()
        node = Node(net)
        node.apply(baseline())
        yield node
        asyncio.run(node.backend.cleanup())
        assert "kubelite-proxy" not in in_ns(NODE, "nft", "list", "tables").stdout
    finally:
        net.down()


@pytest.fixture
def fresh(node: Node) -> Node:
    node.apply(baseline())
    return node


def even(counts: Counter[str], total: int) -> bool:
    """Both backends answered everything, each at least 30% (p(fail) < 1e-8 for fair coins at 200)."""
    return set(counts) == set(BACKENDS) and sum(counts.values()) == total \
        and min(counts.values()) >= 0.3 * total


# ----- ClusterIP, NodePort, LoadBalancer ------------------------------------------------------------

def test_cluster_ip_spreads_evenly_from_the_host_and_from_a_pod(fresh: Node) -> None:
    for ns in (NODE, POD3):
        counts = fresh.names(f"http://{WEB}/", 200, ns=ns)
        assert even(counts, 200), (ns, counts)


def test_node_port_answers_on_the_node_address_from_host_pod_and_outside(fresh: Node) -> None:
    for ns in (NODE, POD3, EXT):
        counts = fresh.names(f"http://{NODE_IP}:30080/", 40, ns=ns)
        assert set(counts) == set(BACKENDS) and sum(counts.values()) == 40, (ns, counts)


def test_load_balancer_address_from_host_pod_and_outside(fresh: Node) -> None:
    for ns in (NODE, POD3, EXT):
        counts = fresh.names(f"http://{WEB_LB}/", 40, ns=ns)
        assert set(counts) == set(BACKENDS) and sum(counts.values()) == 40, (ns, counts)


def test_external_traffic_policy_cluster_masquerades_local_keeps_the_client(fresh: Node) -> None:
    cluster = fresh.net.curl(EXT, f"http://{NODE_IP}:30080/cgi-bin/id", count=10)
    assert {line.split()[1] for line in cluster} == {GATEWAY}
    for url in (f"http://{NODE_IP}:30082/cgi-bin/id", f"http://{LOCAL_LB}/cgi-bin/id"):
        local = fresh.net.curl(EXT, url, count=10)
        assert local == [f"pod1 {EXT_IP}"] * 10, url  # only this node's endpoint, source preserved
    # pods and the host short-circuit to every endpoint
    assert set(fresh.names(f"http://{LOCAL_LB}/", 40, ns=POD3)) == set(BACKENDS)
    assert set(fresh.names(f"http://{LOCAL_LB}/", 40)) == set(BACKENDS)


def test_hairpin_a_backend_reaches_itself_through_its_service(fresh: Node) -> None:
    answers = fresh.net.curl(netns_name("pod1"), f"http://{WEB}/cgi-bin/id", count=40)
    assert len(answers) == 40
    to_itself = [a for a in answers if a.startswith("pod1 ")]
    assert to_itself and {a.split()[1] for a in to_itself} == {GATEWAY}  # masqueraded, so the reply returns


def test_udp_spreads_over_both_backends(fresh: Node) -> None:
    for ns in (NODE, POD3):
        answers = fresh.net.udp(ns, DNS, 53, count=40)
        assert len(answers) == 40 and {a.split()[0] for a in answers} == set(BACKENDS), (ns, answers)


# ----- rejections, affinity, changes ---------------------------------------------------------------------

def test_a_service_without_endpoints_is_refused_at_once(fresh: Node) -> None:
    for ns, url in ((NODE, f"http://{EMPTY}/"), (POD3, f"http://{EMPTY}/"), (EXT, f"http://{NODE_IP}:30081/"),
                    (POD3, f"http://{WEB}:81/")):  # an undefined port of a ClusterIP too
        code, took = fresh.net.curl_status(ns, url)
        assert code == 7, (ns, url, code, took)  # 7: connection refused (a reset), not a timeout (28)
    # UDP: an ICMP port unreachable; the host's own datagram is refused as it leaves (EPERM)
    assert fresh.net.udp(POD3, NO_DNS, 53, count=3) == ["ERR ConnectionRefusedError"] * 3
    assert fresh.net.udp(NODE, NO_DNS, 53, count=3) == ["ERR PermissionError"] * 3


def test_session_affinity_client_ip_sticks(fresh: Node) -> None:
    for ns in (NODE, POD3):
        counts = fresh.names(f"http://{STICKY}/", 30, ns=ns)
        assert len(counts) == 1 and sum(counts.values()) == 30, (ns, counts)


def test_removing_an_endpoint_takes_effect_incrementally(fresh: Node) -> None:
    services = baseline()
    services["e2e/web"] = [dataclasses.replace(services["e2e/web"][0], endpoints=services["e2e/web"][0].endpoints[1:])]
    fresh.apply(services)
    assert fresh.backend.stats.mode == "incremental" and fresh.backend.stats.script_bytes < 2000
    assert fresh.names(f"http://{WEB}/", 30) == Counter({"pod2": 30})
    services["e2e/web"] = [dataclasses.replace(services["e2e/web"][0], endpoints=())]
    fresh.apply(services)
    assert fresh.net.curl_status(POD3, f"http://{WEB}/")[0] == 7
    fresh.apply(baseline())
    assert even(fresh.names(f"http://{WEB}/", 100), 100)


def test_deleting_a_service_removes_its_rules(fresh: Node) -> None:
    services = baseline()
    del services["e2e/sticky"]
    fresh.apply(services)
    table = fresh.table()
    assert [line for line in table.splitlines() if "e2e/sticky/" in line or re.search(rf"{STICKY}\b", line)] == []
    assert "e2e/web/" in table


# ----- the Proxier against a real API server ----------------------------------------------------------

def _wait(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _slice(pods: dict[str, bool]) -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": [PODS[p]], "conditions": {"ready": ready}, "nodeName": "node-a"}
                          for p, ready in pods.items()]}


def test_proxier_follows_the_api(node: Node, tmp_path: Path) -> None:
    srv = ServerThread(tmp_path, service_cidr="198.19.250.32/27").start()  # clear of the VIPs above
    client = Client(Connection.unix(str(srv.runtime.socket_path)))
    proxier = Proxier(client, node_name="node-a", node_ips=[NODE_IP], cluster_cidr=SUBNET,
                      backend=NftBackend(netns=NODE, table="klp-proxier"), min_sync_interval=0.02)
    try:
        srv.call(_start(proxier))
        created = srv.call(client.create(SERVICES, {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30090}]}},
            namespace="default"))
        vip = created["spec"]["clusterIP"]
        _wait(lambda: node.net.curl_status(POD3, f"http://{vip}/")[0] == 7, "refusal without endpoints")
        srv.call(client.create(ENDPOINTSLICES, _slice({"pod1": True}), namespace="default"))
        _wait(lambda: node.net.curl(POD3, f"http://{vip}/") == ["pod1"], "the first endpoint")
        _update_slice(srv, client, {"pod1": True, "pod2": True})
        _wait(lambda: set(node.names(f"http://{NODE_IP}:30090/", 20, ns=EXT)) == set(BACKENDS), "both endpoints")
        _update_slice(srv, client, {"pod1": False, "pod2": True})
        _wait(lambda: set(node.names(f"http://{vip}/", 20, ns=POD3)) == {"pod2"}, "the not-ready one to go")
        srv.call(client.delete(SERVICES, "web", namespace="default"))
        _wait(lambda: "default/web/" not in in_ns(NODE, "nft", "list", "table", "ip", "klp-proxier").stdout,
              "the deleted service's chains to go")
        srv.call(proxier.stop())
        assert "klp-proxier" not in in_ns(NODE, "nft", "list", "tables").stdout
    finally:
        srv.call(proxier.stop())
        srv.call(client.close())
        srv.stop()
        in_ns(NODE, "nft", "delete", "table", "ip", "klp-proxier", check=False)


async def _start(proxier: Proxier) -> None:
    proxier.start()
    await asyncio.wait_for(proxier.synced.wait(), 10)


def _update_slice(srv: ServerThread, client: Client, pods: dict[str, bool]) -> None:
    current = srv.call(client.get(ENDPOINTSLICES, "web-1", namespace="default"))
    body = _slice(pods)
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    srv.call(client.update(ENDPOINTSLICES, body))


# ----- rule-apply time ------------------------------------------------------------------------------------

def _many(count: int, *, endpoints: int = 2) -> dict[str, list[ServicePort]]:
    out = {}
    for i in range(count):
        eps = tuple(Endpoint(f"198.18.{i % 200}.{j + 2}", 8080, "node-a") for j in range(endpoints))
        out[f"bench/svc-{i}"] = [ServicePort("bench", f"svc-{i}", "http", "tcp", f"198.19.{i // 250}.{i % 250 + 1}",
                                             80, node_port=30000 + i % 2700, endpoints=eps)]
    return out


async def _measure(count: int, ns: str) -> dict[str, float]:
    backend = NftBackend(netns=ns, table="klp-bench")
    services = _many(count)
    ctx = NodeContext("node-a", node_ips=("198.19.250.129",), cluster_cidr="198.18.0.0/16")
    await backend.sync(services, ctx=ctx, dirty=None)
    full = dataclasses.replace(backend.stats)
    key = f"bench/svc-{count // 2}"
    one = services[key][0]
    services[key] = [dataclasses.replace(one, endpoints=one.endpoints[:1])]
    await backend.sync(services, ctx=ctx, dirty={key})
    incremental = dataclasses.replace(backend.stats)
    await backend.cleanup()
    assert full.mode == "full" and incremental.mode == "incremental"
    return {"full_nft": full.nft_seconds, "full_total": full.total_seconds, "full_kb": full.script_bytes / 1024,
            "inc_nft": incremental.nft_seconds, "inc_total": incremental.total_seconds,
            "inc_bytes": incremental.script_bytes}


def test_one_endpoint_change_is_an_incremental_update_of_constant_size() -> None:
    """The update after one endpoint change does not grow with the table (speed: bench/proxy.py)."""
    require_host()
    ns = "klp-test-bench"
    sh("ip", "netns", "del", ns, check=False)
    sh("ip", "netns", "add", ns)
    try:
        rows = {n: asyncio.run(_measure(n, ns)) for n in (100, 1000, 5000)}
    finally:
        sh("ip", "netns", "del", ns)
    print("\nservices  full: nft s / total s / script KiB   one endpoint change: nft s / total s / bytes")
    for n, r in rows.items():
        print(f"{n:>8}  {r['full_nft']:.3f} / {r['full_total']:.3f} / {r['full_kb']:.0f}"
              f"   {r['inc_nft']:.4f} / {r['inc_total']:.4f} / {r['inc_bytes']:.0f}")
    assert all(r["inc_bytes"] < 1000 for r in rows.values())  # the update does not grow with the table
    assert rows[5000]["full_kb"] > 10 * rows[100]["full_kb"]  # while a full replace does

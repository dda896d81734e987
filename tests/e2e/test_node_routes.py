"""Pod network across nodes on the wire (root): NodeRoutes instances for two node namespaces and a
host namespace (routes_fixtures.py), fed by Node objects in a real API server, carry pod traffic
host-gw and over VXLAN, follow Node changes and deletions, repair drift, and clean up; then the
cost of applying routes for 1,000 nodes."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.network import VTEP_ANNOTATION, NodeRoutes
from kubelite.agent.network.apply import Kernel
from kubelite.agent.network.routes import NodeInfo, host_gw_plan
from kubelite.agent.network.vxlan import vtep_mac
from kubelite.client import Client, Connection
from kubelite.client.resources import NODES as NODE_RT
from kubelite.objects.errors import NotFound
from tests.e2e.routes_fixtures import (
    HOST,
    HOST_IP,
    NODES,
    SCRATCH,
    PodNet,
    fdb_of,
    link_json,
    neighbours_of,
    require_host,
    routes_of,
    sh,
    sweep,
)
from tests.integration.conftest import ServerThread
from tests.support import wait_for

pytestmark = [pytest.mark.e2e]

Obj = dict[str, Any]
A, B = NODES
VX = "kubelite.1"
FAST = {"resync_interval": 0.3, "min_sync_interval": 0.02}


@dataclass
class Api:
    """The API server thread, a client on its loop, and the NodeRoutes started in a test."""

    srv: ServerThread
    client: Client
    running: list[NodeRoutes] = field(default_factory=list)

    def create_node(self, name: str, pod_cidr: str, ip: str) -> None:
        self.srv.call(self.client.create(NODE_RT, {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}}))

    def set_ip(self, name: str, ip: str) -> None:
        self.srv.call(self.client.patch(NODE_RT, name, {"status": {"addresses": [
            {"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}}, subresource="status"))

    def annotation(self, name: str, key: str) -> str | None:
        node = self.srv.call(self.client.get(NODE_RT, name))
        return (node["metadata"].get("annotations") or {}).get(key)  # type: ignore[no-any-return]

    def delete_node(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            self.srv.call(self.client.delete(NODE_RT, name))

    def run(self, node_name: str | None, netns: str, **kw: Any) -> NodeRoutes:
        routes = NodeRoutes(self.client, node_name=node_name, netns=netns, **{**FAST, **kw})
        self.running.append(routes)
        self.srv.call(routes.start())
        self.srv.call(asyncio.wait_for(routes.synced.wait(), 10))
        return routes

    def stop_all(self) -> None:
        while self.running:
            self.srv.call(self.running.pop().stop(cleanup=True))


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodNet]:
    require_host()
    pods = PodNet(tmp_path_factory.mktemp("klrt"))
    try:
        yield pods.up()
    finally:
        pods.down()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    srv = ServerThread(tmp_path_factory.mktemp("klrt-server"), controllers="").start()
    yield srv
    srv.stop()


@pytest.fixture
def api(net: PodNet, server: ServerThread) -> Iterator[Api]:
    """Both Nodes as the node agents would register them; afterwards every NodeRoutes stopped (with
    cleanup), the Nodes deleted and the node addresses put back."""
    client = Client(Connection.unix(str(server.runtime.socket_path)))
    api = Api(server, client)
    for node in NODES:
        api.create_node(node.name, node.pod_cidr, node.ip)
    try:
        yield api
    finally:
        api.stop_all()
        for node in NODES:
            api.delete_node(node.name)
        server.call(client.close())
        net.reset_addresses()


def wait_routes(netns: str, expected: dict[str, str], what: str) -> None:
    wait_for(lambda: routes_of(netns) == expected, timeout=15, what=f"{what} (now {routes_of(netns)})")


# ----- host-gw ------------------------------------------------------------------------------------------

def test_host_gw_routes_carry_pod_traffic_and_follow_the_nodes(net: PodNet, api: Api) -> None:
    assert net.ask(A.pod_netns, B.pod_ip, timeout=1) == "", "pods reach each other before any route: test broken"
    ra = api.run(A.name, A.netns)
    api.run(B.name, B.netns)
    api.run(None, HOST)
    wait_routes(A.netns, {B.pod_cidr: f"via {B.ip}"}, "node-a's route to node-b's pods")
    wait_routes(B.netns, {A.pod_cidr: f"via {A.ip}"}, "node-b's route to node-a's pods")
    wait_routes(HOST, {A.pod_cidr: f"via {A.ip}", B.pod_cidr: f"via {B.ip}"}, "the host's routes")

    # across nodes and back, the source address kept (no masquerade); and from the host to both
    assert net.ask(A.pod_netns, B.pod_ip) == f"{B.pod_netns} {A.pod_ip}"
    assert net.ask(B.pod_netns, A.pod_ip) == f"{A.pod_netns} {B.pod_ip}"
    assert net.ping(A.pod_netns, B.pod_ip) and net.ping(B.pod_netns, A.pod_ip)
    for node in NODES:
        assert net.ask(HOST, node.pod_ip) == f"{node.pod_netns} {HOST_IP}"

    # a route removed behind our back comes back with the periodic resync
    sh("ip", "-n", A.netns, "route", "del", B.pod_cidr)
    wait_routes(A.netns, {B.pod_cidr: f"via {B.ip}"}, "the resync to repair node-a's route")

    # node-b moves to another address: every route follows, and only the new address carries traffic
    moved = "198.19.131.5"
    sh("ip", "-n", B.netns, "addr", "add", f"{moved}/24", "dev", "eth0")
    api.set_ip(B.name, moved)
    wait_routes(A.netns, {B.pod_cidr: f"via {moved}"}, "node-a's route to follow node-b")
    wait_routes(HOST, {A.pod_cidr: f"via {A.ip}", B.pod_cidr: f"via {moved}"}, "the host's route to follow")
    sh("ip", "-n", B.netns, "addr", "del", f"{B.ip}/24", "dev", "eth0")
    wait_routes(B.netns, {A.pod_cidr: f"via {A.ip}"}, "node-b's route after its address change")
    assert net.ask(A.pod_netns, B.pod_ip) == f"{B.pod_netns} {A.pod_ip}"
    assert net.ask(HOST, B.pod_ip) == f"{B.pod_netns} {HOST_IP}"

    # node-b deleted: its routes go everywhere
    api.delete_node(B.name)
    wait_routes(A.netns, {}, "node-a's route to a deleted node to go")
    wait_routes(HOST, {A.pod_cidr: f"via {A.ip}"}, "the host's route to a deleted node to go")
    assert net.ask(A.pod_netns, B.pod_ip, timeout=1) == ""

    # back, but on an address no link here reaches: host-gw skips it, saying why
    api.create_node(B.name, B.pod_cidr, "198.19.199.5")
    wait_for(lambda: any(s.node == B.name for s in ra.plan.skipped), what="node-a to skip the far node")
    [skip] = [s for s in ra.plan.skipped if s.node == B.name]
    assert "198.19.199.5 is not on a subnet connected here" in skip.reason
    assert routes_of(A.netns) == {}

    api.stop_all()
    for netns in (A.netns, B.netns, HOST):
        assert routes_of(netns) == {}, f"routes left in {netns}"


def test_stop_without_cleanup_keeps_routes_and_a_later_start_adopts_them(net: PodNet, api: Api) -> None:
    first = api.run(A.name, A.netns)
    wait_routes(A.netns, {B.pod_cidr: f"via {B.ip}"}, "node-a's route")
    api.running.remove(first)
    api.srv.call(first.stop(cleanup=False))  # an agent restart: the pods keep their network meanwhile
    assert routes_of(A.netns) == {B.pod_cidr: f"via {B.ip}"}
    api.delete_node(B.name)  # changed while nobody watched
    api.run(A.name, A.netns)
    wait_routes(A.netns, {}, "the restarted instance to remove the stale route")


# ----- VXLAN --------------------------------------------------------------------------------------------

def test_vxlan_mode_carries_pod_traffic_through_the_tunnel(net: PodNet, api: Api) -> None:
    ra = api.run(A.name, A.netns, mode="vxlan")
    api.run(B.name, B.netns, mode="vxlan")
    host = api.run(None, HOST, mode="vxlan")
    assert host.mode == "host-gw"
    for node in NODES:
        wait_for(partial(_published, api, node.name), what=f"{node.name} to publish its VTEP MAC")
    wait_routes(A.netns, {B.pod_cidr: f"via 198.18.232.0 dev {VX} onlink"}, "node-a's route through the tunnel")
    wait_routes(B.netns, {A.pod_cidr: f"via 198.18.231.0 dev {VX} onlink"}, "node-b's route through the tunnel")
    device = link_json(A.netns, VX)
    assert device is not None
    assert (device["mtu"], device["address"]) == (1450, vtep_mac(A.name))
    info = device["linkinfo"]["info_data"]
    assert (info["id"], info["local"], info["port"], info["learning"]) == (1, A.ip, 4789, False)
    assert neighbours_of(A.netns, VX) == {("198.18.232.0", vtep_mac(B.name))}
    assert fdb_of(A.netns, VX) == {(vtep_mac(B.name), B.ip)}

    sent = _tx_packets(A.netns)
    assert net.ask(A.pod_netns, B.pod_ip) == f"{B.pod_netns} {A.pod_ip}"
    assert net.ask(B.pod_netns, A.pod_ip) == f"{A.pod_netns} {B.pod_ip}"
    assert _tx_packets(A.netns) >= sent + 6, "pod traffic did not go through node-a's vxlan device"
    for node in NODES:  # the host role routes host-gw, beside the tunnel
        assert net.ask(HOST, node.pod_ip) == f"{node.pod_netns} {HOST_IP}"

    # node-b moves: it recreates its device on the new local address, node-a re-points the fdb
    moved = "198.19.131.5"
    sh("ip", "-n", B.netns, "addr", "add", f"{moved}/24", "dev", "eth0")
    api.set_ip(B.name, moved)
    wait_for(lambda: fdb_of(A.netns, VX) == {(vtep_mac(B.name), moved)}, what="node-a's fdb to follow node-b")
    wait_for(lambda: ((link_json(B.netns, VX) or {}).get("linkinfo") or {}).get("info_data", {}).get("local") == moved,
             what="node-b's device to use its new address")
    wait_routes(B.netns, {A.pod_cidr: f"via 198.18.231.0 dev {VX} onlink"}, "node-b's route on the new device")
    sh("ip", "-n", B.netns, "addr", "del", f"{B.ip}/24", "dev", "eth0")
    assert net.ask(A.pod_netns, B.pod_ip) == f"{B.pod_netns} {A.pod_ip}"
    assert net.ask(B.pod_netns, A.pod_ip) == f"{A.pod_netns} {B.pod_ip}"

    api.delete_node(B.name)
    wait_routes(A.netns, {}, "node-a's tunnel route to a deleted node to go")
    wait_for(lambda: not neighbours_of(A.netns, VX) and not fdb_of(A.netns, VX),
             what="node-a's neighbour and fdb entries for a deleted node to go")
    assert ra.plan.routes == ()

    api.stop_all()
    for node in NODES:
        assert link_json(node.netns, VX) is None, f"{VX} left in {node.netns}"
        assert routes_of(node.netns) == {}
    assert routes_of(HOST) == {}


def _published(api: Api, name: str) -> bool:
    return api.annotation(name, VTEP_ANNOTATION) == vtep_mac(name)


def _tx_packets(netns: str) -> int:
    device = link_json(netns, VX)
    assert device is not None, f"no {VX} in {netns}"
    return int(device["stats64"]["tx"]["packets"])


# ----- cost -----------------------------------------------------------------------------------------------

def test_routes_for_a_thousand_nodes(tmp_path: Path) -> None:
    """Plan + apply for 1,000 nodes (one `ip -batch`), a resync that changes nothing, one node
    moved, and the cleanup, 5 rounds; medians printed (docs/performance.md), asserted only for
    correctness."""
    require_host()
    sweep()
    sh("ip", "netns", "add", SCRATCH)
    try:
        sh("ip", "-n", SCRATCH, "-batch", "-", input="link add klrt-m0 type bridge\n"
           "addr add 198.19.132.1/22 dev klrt-m0\nlink set klrt-m0 up\n")
        rounds = [asyncio.run(_measure(1000)) for _ in range(5)]
    finally:
        sh("ip", "netns", "del", SCRATCH, check=False)
    medians = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print("\nnode routes, 1,000 nodes (median of 5): " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in medians.items()))


async def _measure(count: int) -> dict[str, float]:
    kernel = Kernel(netns=SCRATCH)
    base, pods = ipaddress.IPv4Address("198.19.132.2"), ipaddress.IPv4Network("198.18.0.0/16")
    nodes = [NodeInfo(f"n{i}", pod_cidr=cidr, internal_ip=base + i)
             for i, cidr in zip(range(count), pods.subnets(new_prefix=26), strict=False)]

    async def sync(infos: list[NodeInfo]) -> tuple[float, int]:
        started = time.perf_counter()
        plan = host_gw_plan(infos, self_name=None, local=await kernel.local_addresses())
        changes = await kernel.apply_routes(plan.routes)
        return time.perf_counter() - started, len(changes.add) + len(changes.remove)

    initial, added = await sync(nodes)
    assert added == count and len(routes_of(SCRATCH)) == count
    noop, changed = await sync(nodes)
    assert changed == 0
    nodes[500] = NodeInfo("n500", pod_cidr=nodes[500].pod_cidr, internal_ip=base + count + 1)
    one, changed = await sync(nodes)
    assert changed == 1 and routes_of(SCRATCH)[str(nodes[500].pod_cidr)] == f"via {base + count + 1}"
    started = time.perf_counter()
    removed = await kernel.cleanup()
    cleanup = time.perf_counter() - started
    assert len(removed.remove) == count and routes_of(SCRATCH) == {}
    return {"first sync": initial, "resync (no change)": noop, "one node moved": one, "cleanup": cleanup}

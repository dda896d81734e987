"""NodeRoutes (kubelite.agent.network.component) over a fake Node API and a fake kernel: which
syncs happen, what they ask of the kernel, what they log."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from ipaddress import IPv4Interface
from typing import Any

import pytest
from network_objects import Obj, node

from kubelite.agent.network import NodeRoutes
from kubelite.agent.network.apply import NetworkError, VxlanChanges
from kubelite.agent.network.routes import Route, RouteChanges, route_changes
from kubelite.agent.network.vxlan import VTEP_ANNOTATION, DeviceSpec, FdbEntry, Neighbour, vtep_mac
from kubelite.objects.patch import merge_patch

LOCAL = (IPv4Interface("198.19.128.2/24"), IPv4Interface("198.18.1.1/24"))


class FakeNodes:
    """Just enough of the Client for a Node informer and the VTEP patch."""

    def __init__(self, *nodes: Obj) -> None:
        self.nodes: dict[str, Obj] = {}
        self.events: asyncio.Queue[Obj] = asyncio.Queue()
        self.patches: list[tuple[str, Obj]] = []
        self.rv = 0
        for n in nodes:
            self.put(n)

    def put(self, obj: Obj) -> None:
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        kind = "MODIFIED" if obj["metadata"]["name"] in self.nodes else "ADDED"
        self.nodes[obj["metadata"]["name"]] = obj
        self.events.put_nowait({"type": kind, "object": copy.deepcopy(obj)})

    def remove(self, name: str) -> None:
        self.rv += 1
        self.events.put_nowait({"type": "DELETED", "object": self.nodes.pop(name)})

    async def list(self, _rt: Any, _ns: str | None = None, **_: Any) -> Obj:
        while not self.events.empty():  # the list already holds them
            self.events.get_nowait()
        return {"items": copy.deepcopy(list(self.nodes.values())), "metadata": {"resourceVersion": str(self.rv)}}

    async def watch(self, _rt: Any, _ns: str | None = None, **_: Any) -> AsyncIterator[Obj]:
        while True:
            yield await self.events.get()

    async def patch(self, _rt: Any, name: str, patch: Obj, *_: Any, **__: Any) -> Obj:
        self.patches.append((name, patch))
        self.put(merge_patch(self.nodes[name], patch))
        return self.nodes[name]


class FakeKernel:
    netns, proto = None, 211

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.device: DeviceSpec | None = None
        self.neighbours: set[Neighbour] = set()
        self.fdb: set[FdbEntry] = set()
        self.failures = 0
        self.cleaned = 0

    async def local_addresses(self) -> tuple[IPv4Interface, ...]:
        return LOCAL

    async def apply_routes(self, desired: Iterable[Route]) -> RouteChanges:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("RTNETLINK answers: Network is unreachable")
        changes = route_changes(self.routes, desired)
        for r in changes.remove:
            del self.routes[r.dst]
        self.routes.update({r.dst: r for r in changes.add})
        return changes

    async def apply_vxlan(self, spec: DeviceSpec, *, neighbours: Iterable[Neighbour],
                          fdb: Iterable[FdbEntry]) -> VxlanChanges:
        created = self.device != spec
        self.device, self.neighbours, self.fdb = spec, set(neighbours), set(fdb)
        return VxlanChanges(device=("link add",) if created else ())

    async def delete_device(self) -> bool:
        had, self.device = self.device is not None, None
        return had

    async def cleanup(self) -> RouteChanges:
        self.cleaned += 1
        changes = await self.apply_routes(())
        await self.delete_device()
        return changes


def cluster() -> FakeNodes:
    return FakeNodes(node("a", "198.18.1.0/24", "198.19.128.2"), node("b", "198.18.2.0/24", "198.19.128.3"),
                     node("c", "198.18.3.0/24", "198.19.128.4"))


def make(api: FakeNodes, **kw: Any) -> tuple[NodeRoutes, FakeKernel]:
    kw.setdefault("node_name", "a")
    routes = NodeRoutes(api, min_sync_interval=0.001, **kw)  # type: ignore[arg-type]
    kernel = FakeKernel()
    routes.kernel = kernel  # type: ignore[assignment]
    return routes, kernel


async def until(check: Callable[[], Any], what: str) -> None:
    for _ in range(2000):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def vias(kernel: FakeKernel) -> dict[str, str]:
    return {dst: r.via for dst, r in kernel.routes.items()}


async def test_routes_follow_node_changes_and_go_on_stop() -> None:
    api = cluster()
    routes, kernel = make(api)
    await routes.start()
    try:
        await until(lambda: vias(kernel) == {"198.18.2.0/24": "198.19.128.3", "198.18.3.0/24": "198.19.128.4"},
                    "routes to b and c")
        api.put(node("b", "198.18.2.0/24", "198.19.128.5"))
        await until(lambda: vias(kernel).get("198.18.2.0/24") == "198.19.128.5", "b's route to move")
        api.remove("c")
        await until(lambda: "198.18.3.0/24" not in kernel.routes, "c's route to go")
        api.put(node("d", "198.18.4.0/24", "198.19.128.6"))
        await until(lambda: "198.18.4.0/24" in kernel.routes, "a new node's route")
    finally:
        await routes.stop()
    assert kernel.cleaned == 1 and kernel.routes == {}


async def test_stop_without_cleanup_leaves_the_routes() -> None:
    routes, kernel = make(cluster())
    await routes.start()
    await asyncio.wait_for(routes.synced.wait(), 5)
    await routes.stop(cleanup=False)
    assert kernel.cleaned == 0 and len(kernel.routes) == 2


async def test_heartbeats_do_not_wake_the_loop_but_routing_facts_do() -> None:
    routes, _ = make(cluster())
    old = node("b", "198.18.2.0/24", "198.19.128.3")
    beat = copy.deepcopy(old)
    beat["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    routes._updated(old, beat)
    assert not routes._wake.is_set()
    routes._updated(old, node("b", "198.18.2.0/24", "198.19.128.9"))
    assert routes._wake.is_set()


async def test_a_route_removed_behind_our_back_is_repaired_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    routes, kernel = make(cluster(), resync_interval=0.01)
    caplog.set_level(logging.INFO, "kubelite.agent.network")
    await routes.start()
    try:
        await until(lambda: len(kernel.routes) == 2, "the first sync")
        del kernel.routes["198.18.2.0/24"]
        await until(lambda: "198.18.2.0/24" in kernel.routes, "the resync to repair it")
    finally:
        await routes.stop()
    repaired = [r.getMessage() for r in caplog.records if "repaired routes" in r.getMessage()]
    assert repaired and "+1 198.18.2.0/24 via 198.19.128.3 (node b)" in repaired[0]


async def test_skipped_nodes_are_logged_once_until_the_reason_changes(caplog: pytest.LogCaptureFixture) -> None:
    api = cluster()
    api.put(node("far", "198.18.9.0/24", "198.19.200.9"))
    routes, kernel = make(api, resync_interval=0.01)
    caplog.set_level(logging.INFO, "kubelite.agent.network")
    await routes.start()
    try:
        await until(lambda: routes.sync_count >= 5, "several syncs")
        api.put(node("far", "198.18.9.0/24", "198.19.201.9"))
        await until(lambda: "198.19.201.9" in str(routes._reported), "the new reason")
    finally:
        await routes.stop()
    skips = [r.getMessage() for r in caplog.records if "skips" in r.getMessage()]
    assert len(skips) == 2, skips
    assert "far: InternalIP 198.19.200.9 is not on a subnet connected here" in skips[0]
    assert "198.18.9.0/24" not in kernel.routes


async def test_a_failed_sync_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    routes, kernel = make(cluster())
    kernel.failures = 1
    await routes.start()
    try:
        await until(lambda: len(kernel.routes) == 2, "the retried sync")
    finally:
        await routes.stop()
    assert any("sync failed (RTNETLINK answers: Network is unreachable)" in r.getMessage() for r in caplog.records)


async def test_vxlan_mode_publishes_our_mac_and_installs_peers_with_theirs() -> None:
    api = cluster()
    routes, kernel = make(api, mode="vxlan")
    await routes.start()
    try:
        await until(lambda: kernel.device is not None, "the device")
        assert kernel.device is not None and kernel.device.local == "198.19.128.2"
        assert kernel.device.address == "198.18.1.0/32" and kernel.device.mac == vtep_mac("a")
        await until(lambda: api.patches, "the MAC annotation")
        assert api.patches == [("a", {"metadata": {"annotations": {VTEP_ANNOTATION: vtep_mac("a")}}})]
        assert kernel.routes == {}  # b and c have published nothing yet
        api.put(node("b", "198.18.2.0/24", "198.19.128.3", **{VTEP_ANNOTATION: vtep_mac("b")}))
        await until(lambda: "198.18.2.0/24" in kernel.routes, "b's route")
        assert kernel.routes["198.18.2.0/24"] == Route("198.18.2.0/24", "198.18.2.0", "kubelite.1", onlink=True)
        assert kernel.neighbours == {Neighbour("198.18.2.0", vtep_mac("b"))}
        assert kernel.fdb == {FdbEntry(vtep_mac("b"), "198.19.128.3")}
    finally:
        await routes.stop()
    assert len(api.patches) == 1  # published once: the annotation came back through the watch


async def test_the_host_role_routes_host_gw_to_every_node() -> None:
    routes, kernel = make(cluster(), node_name=None, mode="vxlan")
    assert routes.mode == "host-gw"
    await routes.start()
    try:
        # a's InternalIP is one of LOCAL's addresses: that node is this host, its pods are local
        await until(lambda: set(kernel.routes) == {"198.18.2.0/24", "198.18.3.0/24"}, "routes to b and c")
    finally:
        await routes.stop()


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown pod network mode 'gre': use one of host-gw, vxlan"):
        NodeRoutes(FakeNodes(), node_name="a", mode="gre")  # type: ignore[arg-type]


async def test_vxlan_waits_for_its_own_node_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeNodes(node("b", "198.18.2.0/24", "198.19.128.3", **{VTEP_ANNOTATION: vtep_mac("b")}))
    routes, kernel = make(api, mode="vxlan", resync_interval=0.01)
    caplog.set_level(logging.INFO, "kubelite.agent.network")
    await routes.start()
    try:
        await until(lambda: routes.sync_count >= 5, "several syncs")
        assert kernel.device is None and kernel.routes == {} and api.patches == []
        api.put(node("a", "198.18.1.0/24", "198.19.128.2"))
        await until(lambda: "198.18.2.0/24" in kernel.routes, "the route once our Node is there")
    finally:
        await routes.stop()
    waits = [r.getMessage() for r in caplog.records if "no vxlan device yet" in r.getMessage()]
    assert len(waits) == 1 and "this node's Node object is not there yet" in waits[0]


async def test_a_failed_cleanup_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    routes, kernel = make(cluster())

    async def broken() -> RouteChanges:
        raise NetworkError("ip -4 route show proto 211 (netns gone): Cannot open network namespace")

    kernel.cleanup = broken  # type: ignore[method-assign]
    await routes.start()
    await asyncio.wait_for(routes.synced.wait(), 5)
    await routes.stop()
    assert any("could not remove its routes" in r.getMessage() for r in caplog.records)

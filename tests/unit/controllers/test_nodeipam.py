"""Node IPAM: the CIDR set, and the controller's decisions against a stale cache, restarts and
node deletion."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest

from kubelite.client import InformerFactory
from kubelite.client.resources import NODES
from kubelite.controllers.nodeipam import CidrSet, CidrSetFull, NodeIpamController
from kubelite.objects.errors import NotFound

Obj = dict[str, Any]


def test_blocks_are_handed_out_in_order_and_reused_only_after_wrapping() -> None:
    cidrs = CidrSet("198.18.0.0/16", 24)
    assert cidrs.size == 256
    assert [cidrs.allocate() for _ in range(3)] == ["198.18.0.0/24", "198.18.1.0/24", "198.18.2.0/24"]
    cidrs.release("198.18.1.0/24")
    assert cidrs.allocate() == "198.18.3.0/24"
    assert cidrs.occupy("198.18.9.0/24") and not cidrs.occupy("10.0.0.0/24") and not cidrs.occupy("198.18.0.0/25")
    assert not cidrs.occupy("garbage")
    small = CidrSet("10.0.0.0/23", 24)
    small.allocate(), small.allocate()
    with pytest.raises(CidrSetFull):
        small.allocate()
    small.release("10.0.0.0/24")
    assert small.allocate() == "10.0.0.0/24"
    with pytest.raises(ValueError):
        CidrSet("198.18.0.0/16", 8)


class FakeClient:
    def __init__(self) -> None:
        self.patches: list[tuple[str, Obj]] = []
        self.events: list[Obj] = []
        self.fail = False

    async def patch(self, rt: Any, name: str, patch: Obj, namespace: str | None = None, **_: Any) -> Obj:
        if self.fail:
            raise NotFound("gone")
        self.patches.append((name, patch))
        return {}

    async def create(self, rt: Any, obj: Obj, namespace: str | None = None, **_: Any) -> Obj:
        self.events.append(obj)
        return obj


def node(name: str, cidr: str = "", uid: str = "") -> Obj:
    spec = {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {}
    return {"metadata": {"name": name, "uid": uid or f"uid-{name}", "resourceVersion": "1"}, "spec": spec}


def controller(*nodes: Obj, cluster_cidr: str = "198.18.0.0/16", mask: int = 24) -> tuple[NodeIpamController, FakeClient]:
    client = FakeClient()
    options = SimpleNamespace(cluster_cidr=cluster_cidr, node_cidr_mask_size=mask)
    ctl = NodeIpamController(client, InformerFactory(client), options=options)  # type: ignore[arg-type]
    for obj in nodes:
        put(ctl, obj)
    return ctl, client


def put(ctl: NodeIpamController, obj: Obj) -> None:
    ctl.nodes.cache[obj["metadata"]["name"]] = copy.deepcopy(obj)


async def test_existing_blocks_are_kept_and_new_nodes_get_free_ones() -> None:
    ctl, client = controller(node("a", "198.18.0.0/24"), node("b", "198.18.2.0/24"), node("c"), node("d"))
    ctl.prime(ctl.nodes.list())
    for name in ("a", "b", "c", "d"):
        await ctl.sync(name)
    assert client.patches == [("c", {"spec": {"podCIDR": "198.18.1.0/24", "podCIDRs": ["198.18.1.0/24"]}}),
                              ("d", {"spec": {"podCIDR": "198.18.3.0/24", "podCIDRs": ["198.18.3.0/24"]}})]


async def test_a_stale_cache_never_gets_a_second_block() -> None:
    ctl, client = controller(node("a"))
    ctl.prime([])
    await ctl.sync("a")
    await ctl.sync("a")  # the watch has not shown our patch yet
    assert len(client.patches) == 1
    put(ctl, node("a", "198.18.0.0/24"))
    await ctl.sync("a")
    assert len(client.patches) == 1 and ctl.cidrs.used() == 1


async def test_deleted_nodes_release_and_full_ranges_wait() -> None:
    ctl, client = controller(node("a"), node("b"), node("c"), cluster_cidr="10.0.0.0/23")
    ctl.prime([])
    for name in ("a", "b", "c"):
        await ctl.sync(name)
    assert [n for n, _ in client.patches] == ["a", "b"]
    assert "c" in ctl._waiting
    del ctl.nodes.cache["a"]
    await ctl.sync("a")
    assert "c" in {ctl.queue._queue[i] for i in range(len(ctl.queue))}  # retried once a block is free
    await ctl.sync("c")
    assert client.patches[-1] == ("c", {"spec": {"podCIDR": "10.0.0.0/24", "podCIDRs": ["10.0.0.0/24"]}})
    ctl.events.close()


async def test_a_node_recreated_under_the_same_name_gets_a_fresh_block() -> None:
    ctl, client = controller(node("a"))
    ctl.prime([])
    await ctl.sync("a")
    put(ctl, node("a", uid="second"))
    await ctl.sync("a")
    assert [p["spec"]["podCIDR"] for _, p in client.patches] == ["198.18.0.0/24", "198.18.1.0/24"]
    assert ctl.cidrs.used() == 1


async def test_a_failed_patch_gives_the_block_back() -> None:
    ctl, client = controller(node("a"))
    ctl.prime([])
    client.fail = True
    with pytest.raises(NotFound):
        await ctl.sync("a")
    assert ctl.cidrs.used() == 0 and "a" not in ctl._assigned


def test_registry_entry() -> None:
    from kubelite.controllers.manager import CONTROLLERS

    assert CONTROLLERS["nodeipam"] == "kubelite.controllers.nodeipam:NodeIpamController"
    assert NODES.plural == "nodes"

"""host-gw routes from Node objects (kubelite.agent.network.routes): pure decisions and diffs."""

from __future__ import annotations

from ipaddress import IPv4Interface

from network_objects import Obj, node

from kubelite.agent.network.routes import (
    NodeInfo,
    Route,
    host_gw_plan,
    node_info,
    parse_addresses,
    parse_routes,
    route_changes,
    route_lines,
)

LOCAL = (IPv4Interface("127.0.0.1/8"), IPv4Interface("198.19.128.2/24"), IPv4Interface("198.18.1.1/24"))


def infos(*nodes: Obj) -> list[NodeInfo]:
    return [node_info(n) for n in nodes]


CLUSTER = infos(node("a", "198.18.1.0/24", "198.19.128.2"), node("b", "198.18.2.0/24", "198.19.128.3"),
                node("c", "198.18.3.0/24", "198.19.128.4"))


def test_node_info_reads_pod_cidr_internal_ip_and_mac() -> None:
    info = node_info(node("a", "198.18.1.0/24", "198.19.128.2", **{"x/mac": "02:AA:bb:cc:dd:ee"}), mac_annotation="x/mac")
    assert (info.name, str(info.pod_cidr), str(info.internal_ip), info.vtep_mac) == \
        ("a", "198.18.1.0/24", "198.19.128.2", "02:aa:bb:cc:dd:ee")


def test_node_info_takes_the_first_ipv4_of_each_and_ignores_junk() -> None:
    obj = {"metadata": {"name": "a"}, "spec": {"podCIDRs": ["fd00::/64", "198.18.9.7/24"]},
           "status": {"addresses": [{"type": "InternalIP", "address": "fd00::1"},
                                    {"type": "ExternalIP", "address": "198.19.9.9"},
                                    {"type": "InternalIP", "address": "not-an-ip"},
                                    {"type": "InternalIP", "address": "198.19.128.7"}]}}
    info = node_info(obj)
    assert str(info.pod_cidr) == "198.18.9.0/24"  # normalised to the network
    assert str(info.internal_ip) == "198.19.128.7"
    assert node_info({"metadata": {"name": "bare"}}) == NodeInfo("bare")


def test_a_node_routes_to_every_other_node_but_itself() -> None:
    plan = host_gw_plan(CLUSTER, self_name="a", local=LOCAL)
    assert [(r.dst, r.via, r.node) for r in plan.routes] == [
        ("198.18.2.0/24", "198.19.128.3", "b"), ("198.18.3.0/24", "198.19.128.4", "c")]
    assert plan.skipped == ()


def test_the_host_role_routes_to_every_node() -> None:
    host = (IPv4Interface("198.19.128.1/24"),)
    plan = host_gw_plan(CLUSTER, self_name=None, local=host)
    assert [r.dst for r in plan.routes] == ["198.18.1.0/24", "198.18.2.0/24", "198.18.3.0/24"]


def test_nodes_without_pod_cidr_or_internal_ip_are_skipped_with_why() -> None:
    nodes = infos(node("b", "198.18.2.0/24", "198.19.128.3"), node("new", ip="198.19.128.9"),
                  node("mute", "198.18.4.0/24"))
    plan = host_gw_plan(nodes, self_name="a", local=LOCAL)
    assert [r.node for r in plan.routes] == ["b"]
    assert {s.node: s.reason for s in plan.skipped} == {"new": "no IPv4 podCIDR yet", "mute": "no IPv4 InternalIP"}


def test_a_node_off_every_connected_subnet_is_skipped_for_host_gw() -> None:
    nodes = infos(node("far", "198.18.5.0/24", "198.19.200.5"), node("b", "198.18.2.0/24", "198.19.128.3"))
    plan = host_gw_plan(nodes, self_name="a", local=LOCAL)
    assert [r.node for r in plan.routes] == ["b"]
    [skip] = plan.skipped
    assert skip.node == "far" and "198.19.200.5 is not on a subnet connected here" in skip.reason


def test_local_pods_and_own_addresses_are_never_routed() -> None:
    # the host role on a machine that also runs a node agent: that node's InternalIP is ours and
    # its pods sit on a local bridge; a route would replace the kernel's route to them
    nodes = infos(node("host-node", "198.18.1.0/24", "198.19.128.2"), node("stale", "198.18.1.0/24", "198.19.128.5"),
                  node("b", "198.18.2.0/24", "198.19.128.3"))
    plan = host_gw_plan(nodes, self_name=None, local=LOCAL)
    assert [r.node for r in plan.routes] == ["b"]
    reasons = {s.node: s.reason for s in plan.skipped}
    assert reasons["host-node"] == "InternalIP 198.19.128.2 is an address of this host"
    assert reasons["stale"] == "podCIDR 198.18.1.0/24 is connected here (198.18.1.0/24)"


def test_a_host_address_on_lo_or_a_broader_connected_subnet_does_not_block_routes() -> None:
    local = (IPv4Interface("198.18.2.9/32"), IPv4Interface("198.18.0.0/15"), IPv4Interface("198.19.128.1/24"))
    plan = host_gw_plan(infos(node("b", "198.18.2.0/24", "198.19.128.3")), self_name=None, local=local)
    assert [r.node for r in plan.routes] == ["b"]  # a /24 is more specific than a /15: nothing replaced


def test_overlapping_pod_cidrs_go_to_the_first_node_by_name() -> None:
    nodes = infos(node("z", "198.18.2.0/24", "198.19.128.9"), node("b", "198.18.2.0/23", "198.19.128.3"))
    plan = host_gw_plan(nodes, self_name="a", local=LOCAL)
    assert [r.node for r in plan.routes] == ["b"]
    assert plan.skipped[0].node == "z" and "overlaps node b's 198.18.2.0/23" in plan.skipped[0].reason


def test_overlaps_are_found_whichever_cidr_is_wider_or_came_first() -> None:
    nodes = infos(node("n1", "198.18.4.0/24", "198.19.128.11"), node("n2", "198.18.0.0/22", "198.19.128.12"),
                  node("n3", "198.18.6.0/23", "198.19.128.13"), node("n4", "198.18.7.128/25", "198.19.128.14"),
                  node("n5", "198.18.5.0/24", "198.19.128.15"), node("n6", "198.18.4.0/22", "198.19.128.16"))
    plan = host_gw_plan(nodes, self_name=None, local=LOCAL[1:2])
    assert sorted(r.node for r in plan.routes) == ["n1", "n2", "n3", "n5"]
    assert {s.node: s.reason.split(" overlaps ")[1] for s in plan.skipped} == {
        "n4": "node n3's 198.18.6.0/23", "n6": "node n3's 198.18.6.0/23"}


# ----- kernel state and differences ---------------------------------------------------------------

def test_parse_addresses_and_routes_from_ip_json() -> None:
    links = [{"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
             {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "198.19.128.2", "prefixlen": 24},
                                              {"family": "inet6", "local": "fe80::1", "prefixlen": 64}]}]
    assert parse_addresses(links) == (IPv4Interface("127.0.0.1/8"), IPv4Interface("198.19.128.2/24"))
    rows: list[Obj] = [{"dst": "198.18.2.0/24", "gateway": "198.19.128.3", "dev": "eth0", "flags": []},
                       {"dst": "198.18.3.0/24", "gateway": "198.18.3.0", "dev": "kubelite.1", "flags": ["onlink"]},
                       {"dst": "198.18.9.9", "gateway": "198.19.128.3", "dev": "eth0", "flags": []},
                       {"dst": "default", "gateway": "198.19.128.1", "dev": "eth0"}]
    assert parse_routes(rows) == {
        "198.18.2.0/24": Route("198.18.2.0/24", "198.19.128.3", "eth0"),
        "198.18.3.0/24": Route("198.18.3.0/24", "198.18.3.0", "kubelite.1", onlink=True),
        "198.18.9.9/32": Route("198.18.9.9/32", "198.19.128.3", "eth0")}


def test_changes_add_missing_and_moved_routes_and_remove_stale_ones() -> None:
    current = {"198.18.2.0/24": Route("198.18.2.0/24", "198.19.128.3", "eth0"),   # kept (any dev)
               "198.18.3.0/24": Route("198.18.3.0/24", "198.19.128.4", "eth0"),   # moved
               "198.18.9.0/24": Route("198.18.9.0/24", "198.19.128.9", "eth0")}   # stale
    desired = [Route("198.18.2.0/24", "198.19.128.3"), Route("198.18.3.0/24", "198.19.128.5"),
               Route("198.18.4.0/24", "198.19.128.6")]
    changes = route_changes(current, desired)
    assert [r.dst for r in changes.add] == ["198.18.3.0/24", "198.18.4.0/24"]
    assert [r.dst for r in changes.remove] == ["198.18.9.0/24"]
    assert route_lines(changes, proto=211) == [
        "route del 198.18.9.0/24 proto 211",
        "route replace 198.18.3.0/24 via 198.19.128.5 proto 211",
        "route replace 198.18.4.0/24 via 198.19.128.6 proto 211"]
    assert not route_changes(current, current.values())


def test_a_host_gw_route_becomes_a_vxlan_route_when_dev_or_onlink_differs() -> None:
    current = {"198.18.3.0/24": Route("198.18.3.0/24", "198.18.3.0", "eth0")}
    want = Route("198.18.3.0/24", "198.18.3.0", "kubelite.1", onlink=True)
    changes = route_changes(current, [want])
    assert changes.add == (want,)
    assert route_lines(changes, proto=7) == ["route replace 198.18.3.0/24 via 198.18.3.0 dev kubelite.1 onlink proto 7"]

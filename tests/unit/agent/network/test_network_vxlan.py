"""The VXLAN mode's decisions (kubelite.agent.network.vxlan): device, routes, neighbours, fdb."""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network

from network_objects import node

from kubelite.agent.network.routes import NodeInfo, node_info
from kubelite.agent.network.vxlan import (
    VTEP_ANNOTATION,
    DeviceSpec,
    DeviceState,
    FdbEntry,
    Neighbour,
    VxlanConfig,
    device_lines,
    device_spec,
    fdb_lines,
    neighbour_lines,
    parse_device,
    parse_fdb,
    parse_neighbours,
    vtep_mac,
    vxlan_plan,
)

CONFIG = VxlanConfig()
LOCAL = (IPv4Interface("198.19.131.2/24"), IPv4Interface("198.18.231.1/24"))
MAC_B, MAC_C = "02:00:00:00:00:0b", "02:00:00:00:00:0c"


def cluster(**macs: str) -> list[NodeInfo]:
    nodes = [node("a", "198.18.231.0/24", "198.19.131.2"), node("b", "198.18.232.0/24", "198.19.131.3"),
             node("c", "198.18.233.0/24", "10.1.2.3")]  # c shares no link: vxlan does not care
    for n in nodes:
        if n["metadata"]["name"] in macs:
            n["metadata"]["annotations"][VTEP_ANNOTATION] = macs[n["metadata"]["name"]]
    return [node_info(n, mac_annotation=VTEP_ANNOTATION) for n in nodes]


def test_vtep_mac_is_stable_unicast_and_locally_administered() -> None:
    mac = vtep_mac("node-a")
    assert mac == vtep_mac("node-a") != vtep_mac("node-b")
    first = int(mac.split(":")[0], 16)
    assert first & 0x01 == 0 and first & 0x02 == 0x02 and len(mac) == 17


def test_each_other_node_gets_an_onlink_route_a_neighbour_and_an_fdb_entry() -> None:
    plan = vxlan_plan(cluster(b=MAC_B, c=MAC_C), self_name="a", config=CONFIG, local=LOCAL)
    assert [(r.dst, r.via, r.dev, r.onlink, r.node) for r in plan.routes] == [
        ("198.18.232.0/24", "198.18.232.0", "kubelite.1", True, "b"),
        ("198.18.233.0/24", "198.18.233.0", "kubelite.1", True, "c")]
    assert plan.neighbours == {Neighbour("198.18.232.0", MAC_B), Neighbour("198.18.233.0", MAC_C)}
    assert plan.fdb == {FdbEntry(MAC_B, "198.19.131.3"), FdbEntry(MAC_C, "10.1.2.3")}
    assert plan.skipped == ()


def test_nodes_without_a_valid_published_mac_wait() -> None:
    plan = vxlan_plan(cluster(b="not-a-mac"), self_name="a", config=CONFIG, local=LOCAL)
    assert plan.routes == () and plan.neighbours == frozenset() and plan.fdb == frozenset()
    assert {s.node: s.reason for s in plan.skipped} == {"b": "invalid VTEP MAC 'not-a-mac'",
                                                        "c": "no VTEP MAC published yet"}


def test_device_spec_needs_our_own_ip_and_pod_cidr() -> None:
    assert device_spec(None, CONFIG) == "this node's Node object is not there yet"
    assert "no IPv4 InternalIP and podCIDR" in str(device_spec(NodeInfo("a"), CONFIG))
    spec = device_spec(NodeInfo("a", IPv4Network("198.18.231.0/24"), internal_ip=LOCAL[0].ip), CONFIG)
    assert spec == DeviceSpec("kubelite.1", 1, 4789, 1450, "198.19.131.2", "198.18.231.0/32", vtep_mac("a"))


SPEC = DeviceSpec("kubelite.1", 1, 4789, 1450, "198.19.131.2", "198.18.231.0/32", "02:11:22:33:44:55")
GOOD = DeviceState(vni=1, port=4789, local="198.19.131.2", learning=False, mtu=1450, mac="02:11:22:33:44:55",
                   up=True, addresses=("198.18.231.0/32",))


def test_a_missing_device_is_created_whole() -> None:
    assert device_lines(None, SPEC, exists=False) == [
        "link add kubelite.1 address 02:11:22:33:44:55 mtu 1450 type vxlan id 1 local 198.19.131.2 "
        "dstport 4789 nolearning",
        "addr add 198.18.231.0/32 dev kubelite.1", "link set kubelite.1 up"]


def test_a_device_with_other_tunnel_parameters_is_recreated() -> None:
    moved = DeviceState(**{**GOOD.__dict__, "local": "198.19.131.9"})
    lines = device_lines(moved, SPEC, exists=True)
    assert lines[0] == "link del kubelite.1" and lines[1].startswith("link add kubelite.1 ")
    assert device_lines(None, SPEC, exists=True)[0] == "link del kubelite.1"  # not a vxlan link


def test_a_right_device_needs_nothing_and_drift_is_fixed_in_place() -> None:
    assert device_lines(GOOD, SPEC, exists=True) == []
    drifted = DeviceState(**{**GOOD.__dict__, "mtu": 1500, "up": False, "addresses": ("198.18.9.0/32",)})
    assert device_lines(drifted, SPEC, exists=True) == [
        "link set kubelite.1 address 02:11:22:33:44:55 mtu 1450", "addr del 198.18.9.0/32 dev kubelite.1",
        "addr add 198.18.231.0/32 dev kubelite.1", "link set kubelite.1 up"]


def test_parse_device_neighbours_and_fdb_from_ip_json() -> None:
    rows = [{"ifname": "kubelite.1", "flags": ["BROADCAST", "UP"], "mtu": 1450, "address": "02:11:22:33:44:55",
             "linkinfo": {"info_kind": "vxlan", "info_data": {"id": 1, "local": "198.19.131.2", "port": 4789,
                                                              "learning": False}},
             "addr_info": [{"family": "inet", "local": "198.18.231.0", "prefixlen": 32},
                           {"family": "inet6", "local": "fe80::1", "prefixlen": 64}]}]
    assert parse_device(rows) == GOOD
    assert parse_device([]) is None
    assert parse_device([{"ifname": "kubelite.1", "linkinfo": {"info_kind": "bridge"}}]) is None
    assert parse_neighbours([{"dst": "198.18.232.0", "lladdr": "02:00:00:00:00:0B", "state": ["PERMANENT"]}]) == \
        {Neighbour("198.18.232.0", MAC_B)}
    assert parse_fdb([{"mac": MAC_B, "dst": "198.19.131.3", "flags": ["self"]},
                      {"mac": "33:33:00:00:00:01", "flags": ["self"]}]) == {FdbEntry(MAC_B, "198.19.131.3")}


def test_neighbour_changes_replace_moved_macs_and_drop_stale_entries() -> None:
    current = {Neighbour("198.18.232.0", "02:00:00:00:00:99"), Neighbour("198.18.240.0", MAC_C)}
    lines = neighbour_lines(current, [Neighbour("198.18.232.0", MAC_B)], device="kubelite.1")
    assert lines == ["neigh del 198.18.240.0 dev kubelite.1",
                     f"neigh replace 198.18.232.0 lladdr {MAC_B} dev kubelite.1 nud permanent"]
    assert neighbour_lines({Neighbour("198.18.232.0", MAC_B)}, [Neighbour("198.18.232.0", MAC_B)], device="d") == []


def test_fdb_changes_move_a_node_to_its_new_address() -> None:
    lines = fdb_lines({FdbEntry(MAC_B, "198.19.131.3")}, [FdbEntry(MAC_B, "198.19.131.5")], device="kubelite.1")
    assert lines == [f"fdb del {MAC_B} dev kubelite.1 dst 198.19.131.3",
                     f"fdb replace {MAC_B} dev kubelite.1 dst 198.19.131.5 self permanent"]

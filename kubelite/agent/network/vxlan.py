"""The VXLAN mode, as flannel's vxlan backend: pod traffic between nodes that share no link rides
UDP between their InternalIPs (pure decisions; apply.py runs them).

Each node owns one vxlan device (`VxlanConfig`: name `kubelite.1`, VNI 1, UDP 4789, `local
<InternalIP>`, `nolearning`, MTU 1450) holding its podCIDR's network address as a /32, and
publishes the device's MAC (the VTEP) in its Node's `kubelite.io/vtep-mac` annotation. For every
other node with a podCIDR, an InternalIP and a published MAC it installs:
- route `podCIDR via <podCIDR network address> dev kubelite.1 onlink` (proto 211, as host-gw's);
- neighbour `<podCIDR network address> lladdr <their MAC> dev kubelite.1 nud permanent`;
- fdb `<their MAC> dst <their InternalIP> dev kubelite.1` (which node's IP carries that MAC).
The encapsulation costs 50 bytes: the CNI bridge (and so every pod's eth0) must use MTU 1450 too
(runtime-recipes §2: with 1500 only GSO hides the problem, until a non-GSO full-size packet drops).

The VTEP MAC is derived from the node name (locally administered, stable), so an agent restart or
a recreated device publishes the same MAC and the peers' neighbour entries stay valid.
Everything on the device is ours (we created it), so stale neighbours and fdb entries are found by
listing the device. The host role (no Node of its own, hence no VTEP to publish) routes host-gw.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Interface
from typing import Any

from kubelite.agent.network.routes import NodeInfo, Route, Skip, peers

Obj = dict[str, Any]
VTEP_ANNOTATION = "kubelite.io/vtep-mac"
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


@dataclass(frozen=True)
class VxlanConfig:
    """The device every node creates. MTU 1450 = 1500 - 50 bytes of VXLAN over IPv4 encapsulation."""

    device: str = "kubelite.1"
    vni: int = 1
    port: int = 4789
    mtu: int = 1450


@dataclass(frozen=True)
class DeviceSpec:
    """This node's vxlan device as it should be."""

    name: str
    vni: int
    port: int
    mtu: int
    local: str  # our InternalIP
    address: str  # our podCIDR's network address, /32
    mac: str


@dataclass(frozen=True)
class DeviceState:
    """The device as `ip -j -d addr show dev D` reports it."""

    vni: int
    port: int
    local: str
    learning: bool
    mtu: int
    mac: str
    up: bool
    addresses: tuple[str, ...]  # "a.b.c.d/n"


@dataclass(frozen=True, order=True)
class Neighbour:
    ip: str
    mac: str


@dataclass(frozen=True, order=True)
class FdbEntry:
    mac: str
    dst: str


@dataclass(frozen=True)
class VxlanPlan:
    routes: tuple[Route, ...] = ()
    neighbours: frozenset[Neighbour] = frozenset()
    fdb: frozenset[FdbEntry] = frozenset()
    skipped: tuple[Skip, ...] = ()


def vtep_mac(node_name: str) -> str:
    """A stable, locally administered unicast MAC for a node's VTEP."""
    digest = hashlib.sha256(node_name.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def device_spec(own: NodeInfo | None, config: VxlanConfig) -> DeviceSpec | str:
    """This node's device, or why it cannot exist yet."""
    if own is None:
        return "this node's Node object is not there yet"
    if own.internal_ip is None or own.pod_cidr is None:
        return f"node {own.name} has no IPv4 InternalIP and podCIDR yet"
    return DeviceSpec(name=config.device, vni=config.vni, port=config.port, mtu=config.mtu,
                      local=str(own.internal_ip), address=f"{own.pod_cidr.network_address}/32",
                      mac=vtep_mac(own.name))


def vxlan_plan(nodes: Iterable[NodeInfo], *, self_name: str, config: VxlanConfig,
               local: Iterable[IPv4Interface]) -> VxlanPlan:
    chosen, skipped = peers(nodes, self_name=self_name, local=local, need_adjacency=False)
    routes, neighbours, fdb = [], set(), set()
    for info in chosen:
        if not _MAC.match(info.vtep_mac):
            reason = f"invalid VTEP MAC {info.vtep_mac!r}" if info.vtep_mac else "no VTEP MAC published yet"
            skipped.append(Skip(info.name, reason))
            continue
        assert info.pod_cidr is not None and info.internal_ip is not None  # peers() guarantees both
        gateway = str(info.pod_cidr.network_address)
        routes.append(Route(str(info.pod_cidr), gateway, config.device, onlink=True, node=info.name))
        neighbours.add(Neighbour(gateway, info.vtep_mac))
        fdb.add(FdbEntry(info.vtep_mac, str(info.internal_ip)))
    return VxlanPlan(routes=tuple(sorted(routes)), neighbours=frozenset(neighbours), fdb=frozenset(fdb),
                     skipped=tuple(sorted(skipped, key=lambda s: s.node)))


# ----- the device -------------------------------------------------------------------------------------

def parse_device(rows: list[Obj]) -> DeviceState | None:
    """`ip -j -d addr show dev D` → its state; None when absent or not a vxlan device."""
    if not rows:
        return None
    link = rows[0]
    info = link.get("linkinfo") or {}
    if info.get("info_kind") != "vxlan":
        return None
    data = info.get("info_data") or {}
    addresses = tuple(f"{a['local']}/{a.get('prefixlen', 32)}" for a in link.get("addr_info") or []
                      if a.get("family") == "inet" and a.get("local"))
    return DeviceState(vni=int(data.get("id", -1)), port=int(data.get("port", 0)), local=str(data.get("local", "")),
                       learning=bool(data.get("learning", True)), mtu=int(link.get("mtu", 0)),
                       mac=str(link.get("address", "")).lower(), up="UP" in (link.get("flags") or []),
                       addresses=addresses)


def device_lines(state: DeviceState | None, spec: DeviceSpec, *, exists: bool) -> list[str]:
    """`ip -batch` lines that turn `state` into `spec`. `exists`: a link of that name is there
    (possibly not vxlan, then `state` is None and it is replaced)."""
    n = spec.name
    create = [f"link add {n} address {spec.mac} mtu {spec.mtu} type vxlan id {spec.vni} local {spec.local} "
              f"dstport {spec.port} nolearning",
              f"addr add {spec.address} dev {n}", f"link set {n} up"]
    if state is None or (state.vni, state.port, state.local, state.learning) != \
            (spec.vni, spec.port, spec.local, False):
        return ([f"link del {n}"] if exists else []) + create  # these cannot change on a live device
    out = []
    if state.mac != spec.mac or state.mtu != spec.mtu:
        out.append(f"link set {n} address {spec.mac} mtu {spec.mtu}")
    out += [f"addr del {a} dev {n}" for a in state.addresses if a != spec.address]
    if spec.address not in state.addresses:
        out.append(f"addr add {spec.address} dev {n}")
    if not state.up:
        out.append(f"link set {n} up")
    return out


# ----- neighbours and fdb ------------------------------------------------------------------------------

def parse_neighbours(rows: list[Obj]) -> set[Neighbour]:
    """`ip -j neigh show dev D nud permanent`."""
    return {Neighbour(str(r["dst"]), str(r["lladdr"]).lower()) for r in rows if r.get("dst") and r.get("lladdr")}


def parse_fdb(rows: list[Obj]) -> set[FdbEntry]:
    """`bridge -j fdb show dev D`: the unicast entries with a remote (ours)."""
    return {FdbEntry(str(r["mac"]).lower(), str(r["dst"])) for r in rows if r.get("mac") and r.get("dst")}


def neighbour_lines(current: set[Neighbour], desired: Iterable[Neighbour], *, device: str) -> list[str]:
    desired = set(desired)
    wanted_ips = {n.ip for n in desired}
    # an entry whose MAC changed is replaced in place, not deleted first
    stale = sorted(n for n in current - desired if n.ip not in wanted_ips)
    return [f"neigh del {n.ip} dev {device}" for n in stale] + \
        [f"neigh replace {n.ip} lladdr {n.mac} dev {device} nud permanent" for n in sorted(desired - current)]


def fdb_lines(current: set[FdbEntry], desired: Iterable[FdbEntry], *, device: str) -> list[str]:
    """`bridge -batch` lines. A vxlan fdb entry may hold several remotes per MAC: a moved node's
    old remote is deleted first, so `replace` leaves exactly one."""
    desired = set(desired)
    return [f"fdb del {e.mac} dev {device} dst {e.dst}" for e in sorted(current - desired)] + \
        [f"fdb replace {e.mac} dev {device} dst {e.dst} self permanent" for e in sorted(desired - current)]

"""Routes between nodes' pod CIDRs, host-gw style: from the Node objects, the routes this network
namespace needs so that every other node's pods are reached through that node (pure).

Data flow: Node objects → `node_info` (name, podCIDR, InternalIP, VTEP MAC) → `peers` (the nodes
worth a route here, and the ones skipped with why) → `host_gw_plan` (`podCIDR via InternalIP`) or
vxlan.py's plan → apply.py compares with what the kernel holds (`parse_routes` of
`ip -j route show proto P`) through `route_changes` and writes `route_lines` with `ip -batch`.
This namespace's own IPv4 addresses (`parse_addresses` of `ip -j -4 addr show`) are an input, so
every decision stays pure.

Invariants:
- one route per destination (a podCIDR); `self_name` names this node (never routed to itself);
  `self_name=None` is the host role (the machine running the server): a route to every node;
- never a route via one of this namespace's own addresses, nor to a podCIDR that holds a subnet
  connected here (those pods sit on a local bridge: replacing the kernel's route would cut them off);
- host-gw needs L2 adjacency: a node whose InternalIP is outside every connected subnet is skipped
  (the kernel would refuse the gateway anyway);
- nodes claiming overlapping podCIDRs: the first by name keeps it, the others are skipped;
- IPv4 only (the cluster CIDR is IPv4); a Node without an IPv4 InternalIP or podCIDR is skipped.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

Obj = dict[str, Any]
PROTO = 211  # the route protocol number that marks our routes: we list and delete exactly these


@dataclass(frozen=True)
class NodeInfo:
    """What routing needs from one Node."""

    name: str
    pod_cidr: IPv4Network | None = None
    internal_ip: IPv4Address | None = None
    vtep_mac: str = ""


@dataclass(frozen=True, order=True)
class Route:
    """`dst via via [dev dev onlink]`; `node` only labels log lines (not compared)."""

    dst: str
    via: str
    dev: str = ""  # "": the kernel picks the interface holding the gateway's subnet
    onlink: bool = False
    node: str = field(default="", compare=False)

    def line(self, proto: int) -> str:
        dev = f" dev {self.dev}" if self.dev else ""
        onlink = " onlink" if self.onlink else ""
        return f"route replace {self.dst} via {self.via}{dev}{onlink} proto {proto}"

    def __str__(self) -> str:
        return f"{self.dst} via {self.via}" + (f" dev {self.dev}" if self.dev else "")


@dataclass(frozen=True)
class Skip:
    node: str
    reason: str


@dataclass(frozen=True)
class Plan:
    routes: tuple[Route, ...] = ()
    skipped: tuple[Skip, ...] = ()


@dataclass(frozen=True)
class RouteChanges:
    add: tuple[Route, ...] = ()  # missing or different: `route replace`
    remove: tuple[Route, ...] = ()  # ours, no longer wanted: `route del`

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


# ----- Node objects ---------------------------------------------------------------------------------

def node_info(node: Obj, *, mac_annotation: str = "") -> NodeInfo:
    meta, spec = node.get("metadata") or {}, node.get("spec") or {}
    cidrs = [spec.get("podCIDR"), *(spec.get("podCIDRs") or [])]
    addresses = (node.get("status") or {}).get("addresses") or []
    ips = [a.get("address") for a in addresses if isinstance(a, dict) and a.get("type") == "InternalIP"]
    mac = str((meta.get("annotations") or {}).get(mac_annotation) or "") if mac_annotation else ""
    return NodeInfo(name=str(meta.get("name") or ""), pod_cidr=_first(cidrs, _network),
                    internal_ip=_first(ips, _address), vtep_mac=mac.lower())


def _network(text: str) -> IPv4Network:
    net = ipaddress.ip_network(text, strict=False)
    if not isinstance(net, IPv4Network):
        raise ValueError(text)
    return net


def _address(text: str) -> IPv4Address:
    return IPv4Address(text)


def _first(values: Iterable[Any], parse: Any) -> Any:
    for value in values:
        if isinstance(value, str) and value:
            try:
                return parse(value)
            except ValueError:
                continue
    return None


# ----- decisions ------------------------------------------------------------------------------------

def peers(nodes: Iterable[NodeInfo], *, self_name: str | None, local: Iterable[IPv4Interface],
          need_adjacency: bool) -> tuple[list[NodeInfo], list[Skip]]:
    """The other nodes that get a route here (by name), and the skipped ones with why."""
    local = tuple(local)
    own_ips = {i.ip for i in local}
    # a /32 (an address on lo, the vxlan device's) makes no connected route that we could replace
    connected = [i.network for i in local if i.network.prefixlen < 32]
    claimed = _Claims()
    chosen: list[NodeInfo] = []
    skipped: list[Skip] = []
    for info in sorted(nodes, key=lambda n: n.name):
        if info.name == self_name:
            continue
        reason = _skip_reason(info, own_ips=own_ips, connected=connected, claimed=claimed,
                              need_adjacency=need_adjacency)
        if reason:
            skipped.append(Skip(info.name, reason))
        else:
            assert info.pod_cidr is not None
            claimed.add(info.pod_cidr, info.name)
            chosen.append(info)
    return chosen, skipped


class _Claims:
    """Pod CIDRs already routed, as sorted disjoint intervals: an overlap test is a bisection, so a
    plan for thousands of nodes stays O(n log n)."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._spans: list[tuple[int, int, IPv4Network, str]] = []

    def add(self, net: IPv4Network, node: str) -> None:
        start = int(net.network_address)
        at = bisect.bisect(self._starts, start)
        self._starts.insert(at, start)
        self._spans.insert(at, (start, int(net.broadcast_address), net, node))

    def overlapping(self, net: IPv4Network) -> tuple[IPv4Network, str] | None:
        start, end = int(net.network_address), int(net.broadcast_address)
        at = bisect.bisect(self._starts, end)  # spans starting at or before our end
        if at:
            _, other_end, other, node = self._spans[at - 1]
            if other_end >= start:  # disjoint spans: only the last one starting before our end can reach us
                return other, node
        return None


def _skip_reason(info: NodeInfo, *, own_ips: set[IPv4Address], connected: list[IPv4Network],
                 claimed: _Claims, need_adjacency: bool) -> str:
    cidr, ip = info.pod_cidr, info.internal_ip
    if cidr is None:
        return "no IPv4 podCIDR yet"
    if ip is None:
        return "no IPv4 InternalIP"
    if ip in own_ips:
        return f"InternalIP {ip} is an address of this host"
    local_net = next((n for n in connected if n.subnet_of(cidr)), None)
    if local_net is not None:
        return f"podCIDR {cidr} is connected here ({local_net})"
    other = claimed.overlapping(cidr)
    if other is not None:
        return f"podCIDR {cidr} overlaps node {other[1]}'s {other[0]}"
    if need_adjacency and not any(ip in n for n in connected):
        return f"InternalIP {ip} is not on a subnet connected here (host-gw needs a shared link)"
    return ""


def host_gw_plan(nodes: Iterable[NodeInfo], *, self_name: str | None, local: Iterable[IPv4Interface]) -> Plan:
    chosen, skipped = peers(nodes, self_name=self_name, local=local, need_adjacency=True)
    routes = tuple(sorted(Route(str(n.pod_cidr), str(n.internal_ip), node=n.name) for n in chosen))
    return Plan(routes=routes, skipped=tuple(skipped))


# ----- the kernel's view ------------------------------------------------------------------------------

def parse_addresses(links: list[Obj]) -> tuple[IPv4Interface, ...]:
    """`ip -j -4 addr show` → this namespace's IPv4 interface addresses."""
    out = []
    for link in links:
        for addr in link.get("addr_info") or []:
            if addr.get("family") == "inet" and addr.get("local"):
                out.append(IPv4Interface(f"{addr['local']}/{addr.get('prefixlen', 32)}"))
    return tuple(out)


def parse_routes(rows: list[Obj]) -> dict[str, Route]:
    """`ip -j route show proto P` → our routes by destination (as written: `a.b.c.d/n`)."""
    out = {}
    for row in rows:
        dst = str(row.get("dst") or "")
        try:
            key = str(_network(dst))
        except ValueError:
            continue  # "default" or a family we never write: not ours to interpret
        out[key] = Route(key, str(row.get("gateway") or ""), str(row.get("dev") or ""),
                         "onlink" in (row.get("flags") or []))
    return out


def route_changes(current: Mapping[str, Route], desired: Iterable[Route]) -> RouteChanges:
    wanted = {r.dst: r for r in desired}
    add = tuple(r for dst, r in sorted(wanted.items()) if not _same(current.get(dst), r))
    remove = tuple(r for dst, r in sorted(current.items()) if dst not in wanted)
    return RouteChanges(add=add, remove=remove)


def _same(have: Route | None, want: Route) -> bool:
    return have is not None and have.via == want.via and have.onlink == want.onlink \
        and (not want.dev or have.dev == want.dev)


def route_lines(changes: RouteChanges, *, proto: int = PROTO) -> list[str]:
    """`ip -batch` lines: stale routes deleted (only ours: the proto selects), then the rest replaced."""
    return [f"route del {r.dst} proto {proto}" for r in changes.remove] + [r.line(proto) for r in changes.add]

"""The desired packet-rewriting state of one node, as data (kube-proxy's nftables mode, modelled).

Data flow: `ServicePort`s (serviceports.py) + a `NodeContext` → `service_fragment` per Service →
`assemble` → one `Ruleset`; nft.py renders a Ruleset (whole, or the difference from the last one)
into an `nft -f` script. Nothing here does I/O, so every decision is unit-tested as data.

The shape, as upstream's:
- Dispatch by verdict maps: `service-ips` (ClusterIP, externalIPs, LoadBalancer ingress IPs:
  ip . proto . port) and `service-nodeports` (proto . port, on the `nodeport-ips` addresses: the
  node's own, never 127.0.0.1; upstream's nftables mode has no localhost NodePorts either, since
  DNAT of loopback traffic would need route_localnet).
- Per service port a policy chain `service-…` (Cluster: all usable endpoints) and/or `local-…`
  (only this node's), spreading new connections evenly with `numgen random mod N` over per-endpoint
  chains `endpoint-…`, which mark hairpin traffic (source == endpoint) for masquerade and DNAT.
- External destinations (NodePort, LB, externalIPs) go through `external-…`: Cluster policy
  masquerades (the endpoint may be on another node); Local policy keeps the client address, sends
  pod- and host-originated traffic to the Cluster chain (short circuit), and the rest to `local-…`.
- sessionAffinity ClientIP: one dynamic set with timeout per endpoint; the policy chain first sends
  a source found in an endpoint's set to that endpoint, and the endpoint chain refreshes the entry.
- A port with no usable endpoint anywhere is rejected (no-endpoint maps → `reject-chain`); an
  external destination with endpoints but none local under Local policy is dropped, as upstream.
Invariants: every chain a verdict or rule names is in `chains` (or is a fixed chain of nft.py);
names are stable for the same input, so an endpoint change touches only that service's chains.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from kubelite.proxy.serviceports import Endpoint, ServicePort, categorize

# chains and maps that always exist (rendered by nft.py)
MASQ_CHAIN = "mark-for-masquerade"
REJECT_CHAIN = "reject-chain"
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NO_ENDPOINT_SERVICES = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
CLUSTER_IPS = "cluster-ips"
NODEPORT_IPS = "nodeport-ips"
MAPS = (SERVICE_IPS, SERVICE_NODEPORTS, NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS)
SETS = (CLUSTER_IPS, NODEPORT_IPS)
NAME_MAX = 240  # nft names may be 256 bytes; room for the prefix


@dataclass(frozen=True)
class NodeContext:
    node_name: str
    node_ips: tuple[str, ...] = ()  # NodePort addresses
    cluster_cidr: str = ""  # pod addresses: traffic from elsewhere to a ClusterIP is masqueraded
    masquerade_all: bool = False
    service_cidr: str = ""  # unallocated ClusterIPs in it are dropped


@dataclass(frozen=True)
class Match:
    saddr: str = ""  # source address or CIDR
    not_saddr: str = ""  # source not in this CIDR
    saddr_set: str = ""  # source is in this (affinity) set
    local_source: bool = False  # sent from an address of this host (fib saddr type local)
    daddr: str = ""
    dport: tuple[str, int] | None = None  # (protocol, port)


@dataclass(frozen=True)
class Jump:
    target: str
    match: Match = Match()
    goto: bool = False  # goto: the target's end does not return here


@dataclass(frozen=True)
class Balance:
    targets: tuple[str, ...]  # numgen random mod len(targets), goto one


@dataclass(frozen=True)
class Remember:
    set_name: str  # add/refresh the source in an affinity set


@dataclass(frozen=True)
class Dnat:
    protocol: str
    ip: str
    port: int


Rule = Jump | Balance | Remember | Dnat


@dataclass(frozen=True)
class Verdict:
    action: str  # "goto" or "drop"
    chain: str = ""


REJECT = Verdict("goto", REJECT_CHAIN)
DROP = Verdict("drop")
MapKey = tuple[str, str, int] | tuple[str, int]


def goto(chain: str) -> Verdict:
    return Verdict("goto", chain)


@dataclass
class Ruleset:
    """Maps (name → key → verdict), sets (name → addresses), chains (name → rules) and affinity
    sets (name → timeout seconds). A Service's fragment and the assembled whole share the type."""

    maps: dict[str, dict[MapKey, Verdict]] = field(default_factory=lambda: {m: {} for m in MAPS})
    sets: dict[str, set[str]] = field(default_factory=lambda: {s: set() for s in SETS})
    chains: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    affinity_sets: dict[str, int] = field(default_factory=dict)

    def merge(self, other: Ruleset) -> None:
        for name, entries in other.maps.items():
            self.maps[name].update(entries)
        for name, members in other.sets.items():
            self.sets[name].update(members)
        self.chains.update(other.chains)
        self.affinity_sets.update(other.affinity_sets)


def assemble(fragments: Iterable[Ruleset], ctx: NodeContext) -> Ruleset:
    whole = Ruleset()
    for fragment in fragments:
        whole.merge(fragment)
    whole.sets[NODEPORT_IPS].update(ctx.node_ips)
    return whole


def build(ports: Iterable[ServicePort], ctx: NodeContext) -> Ruleset:
    """The whole ruleset for these service ports (tests and one-shot use)."""
    return assemble([service_fragment(ports, ctx)], ctx)


# ----- names ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8192)  # each name is asked for twice per build, and again on each re-sync
def _hashed(prefix: str, base: str) -> str:
    # 8 base32 characters are the first 5 bytes of the digest; encoding only those is 3x faster
    # (b32encode is pure Python) and gives the same names
    digest = base64.b32encode(hashlib.sha256(base.encode()).digest()[:5]).decode()
    name = f"{digest}-{base}"
    if len(name) > NAME_MAX:
        name = name[:NAME_MAX - 3] + "..."
    return f"{prefix}-{name}"


class _Names:
    """A service port's chain names, each hashed when first used (most ports need one or two)."""

    def __init__(self, sp: ServicePort) -> None:
        self._id = sp.id

    @functools.cached_property
    def service(self) -> str:
        return _hashed("service", self._id)

    @functools.cached_property
    def local(self) -> str:
        return _hashed("local", self._id)

    @functools.cached_property
    def external(self) -> str:
        return _hashed("external", self._id)

    @classmethod
    def of(cls, sp: ServicePort) -> _Names:
        return cls(sp)


def endpoint_chain(sp: ServicePort, ep: Endpoint) -> str:
    return _hashed("endpoint", f"{sp.id}__{ep.ip}/{ep.port}")


def affinity_set(sp: ServicePort, ep: Endpoint) -> str:
    return _hashed("affinity", f"{sp.id}__{ep.ip}/{ep.port}")


def service_chain(sp: ServicePort) -> str:
    return _Names.of(sp).service


def local_chain(sp: ServicePort) -> str:
    return _Names.of(sp).local


def external_chain(sp: ServicePort) -> str:
    return _Names.of(sp).external


# ----- one service -----------------------------------------------------------------------------------

def service_fragment(ports: Iterable[ServicePort], ctx: NodeContext) -> Ruleset:
    """Everything one Service (all its ports) contributes to the ruleset."""
    rs = Ruleset()
    for sp in ports:
        _add_port(rs, sp, ctx)
    return rs


def _add_port(rs: Ruleset, sp: ServicePort, ctx: NodeContext) -> None:
    cat = categorize(sp, ctx.node_name)
    names = _Names.of(sp)
    has_internal = bool(cat.local) if sp.internal_local else cat.any_usable
    has_external = bool(cat.local) if sp.external_local else cat.any_usable
    uses_external = cat.any_usable and sp.externally_accessible
    # nothing anywhere: reject at once; endpoints elsewhere but none here under Local: drop
    filtered = DROP if cat.any_usable else REJECT
    rs.sets[CLUSTER_IPS].add(sp.cluster_ip)

    key = (sp.cluster_ip, sp.protocol, sp.port)
    if has_internal:
        rs.maps[SERVICE_IPS][key] = goto(names.local if sp.internal_local else names.service)
    else:
        rs.maps[NO_ENDPOINT_SERVICES][key] = filtered
    for ip in dict.fromkeys(sp.external_ips + sp.lb_ips):
        if uses_external:
            rs.maps[SERVICE_IPS][(ip, sp.protocol, sp.port)] = goto(names.external)
        if not has_external:
            rs.maps[NO_ENDPOINT_SERVICES][(ip, sp.protocol, sp.port)] = filtered
    if sp.node_port:
        if uses_external:
            rs.maps[SERVICE_NODEPORTS][(sp.protocol, sp.node_port)] = goto(names.external)
        if not has_external:
            rs.maps[NO_ENDPOINT_NODEPORTS][(sp.protocol, sp.node_port)] = filtered

    if uses_external:
        rs.chains[names.external] = _external_rules(sp, names, ctx, has_local=bool(cat.local))
    for local, endpoints in ((False, cat.cluster), (True, cat.local)):
        if endpoints:
            masq = _internal_masquerade(sp, ctx) if local == sp.internal_local else ()
            rs.chains[names.local if local else names.service] = masq + _balance_rules(sp, endpoints)
    for ep in cat.reachable:
        rs.chains[endpoint_chain(sp, ep)] = _endpoint_rules(sp, ep)
        if sp.affinity_timeout:
            rs.affinity_sets[affinity_set(sp, ep)] = sp.affinity_timeout


def _internal_masquerade(sp: ServicePort, ctx: NodeContext) -> tuple[Rule, ...]:
    """Traffic to the ClusterIP from outside the pod network is masqueraded: the endpoint may be on
    another node, and its reply must come back through this one to be un-DNATed."""
    if not ctx.masquerade_all and not ctx.cluster_cidr:
        return ()
    match = Match(daddr=sp.cluster_ip, dport=(sp.protocol, sp.port),
                  not_saddr="" if ctx.masquerade_all else ctx.cluster_cidr)
    return (Jump(MASQ_CHAIN, match),)


def _external_rules(sp: ServicePort, names: _Names, ctx: NodeContext, *, has_local: bool) -> tuple[Rule, ...]:
    if not sp.external_local:
        return Jump(MASQ_CHAIN), Jump(names.service, goto=True)
    rules: list[Rule] = []
    if ctx.cluster_cidr:  # a pod reaching an external address: as if it went out and came back in
        rules.append(Jump(names.service, Match(saddr=ctx.cluster_cidr), goto=True))
    # the host: its source address is local (maybe the LB address itself), so masquerade it
    rules += [Jump(MASQ_CHAIN, Match(local_source=True)),
              Jump(names.service, Match(local_source=True), goto=True)]
    if has_local:
        rules.append(Jump(names.local, goto=True))
    return tuple(rules)


def _balance_rules(sp: ServicePort, endpoints: tuple[Endpoint, ...]) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    if sp.affinity_timeout:
        rules += [Jump(endpoint_chain(sp, ep), Match(saddr_set=affinity_set(sp, ep)), goto=True)
                  for ep in endpoints]
    rules.append(Balance(tuple(endpoint_chain(sp, ep) for ep in endpoints)))
    return tuple(rules)


def _endpoint_rules(sp: ServicePort, ep: Endpoint) -> tuple[Rule, ...]:
    rules: list[Rule] = [Jump(MASQ_CHAIN, Match(saddr=ep.ip))]  # hairpin: the pod reaching itself
    if sp.affinity_timeout:
        rules.append(Remember(affinity_set(sp, ep)))
    rules.append(Dnat(sp.protocol, ep.ip, ep.port))
    return tuple(rules)

"""Answers for the cluster zone: a DNS question -> the records the Kubernetes DNS specification
(and CoreDNS's kubernetes plugin, where the spec leaves a choice) gives it. Pure: reads only a
`ClusterIndex`, returns dnspython rrsets; the server turns a `Reply` into a message.

Names under the zone (default cluster.local):
  <svc>.<ns>.svc            A/AAAA ClusterIPs; headless: every ready endpoint; ExternalName: CNAME
  <ep>.<svc>.<ns>.svc       one endpoint (<ep> is its hostname, or its IP with dashes)
  _<port>._<proto>.<svc>.<ns>.svc   SRV per named port (headless: per endpoint), targets' A in additional
  <a-b-c-d>.<ns>.pod        A of a pod with that IP in that namespace ("pods verified")
  the apex                  SOA, NS ns.dns.<zone> (whose A is the DNS Service IP); dns-version TXT
Reverse names (in-addr.arpa/ip6.arpa) of ClusterIPs and headless endpoints get PTR records.

Semantics: a name with no records of the asked type but with records of another type or with
descendants is NODATA (NOERROR, SOA in authority); anything else in the zone is NXDOMAIN. A
headless Service without ready endpoints is NXDOMAIN, as CoreDNS answers. Every record carries the
zone TTL (5 s, CoreDNS's default). `resolve` returns None for names this server does not own, which
the server forwards upstream.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.SOA import SOA
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.SRV import SRV

from kubelite.dns.index import ClusterIndex, Endpoint, Port, Service, Slice

TTL = 5
SCHEMA_VERSION = "1.1.0"
MAX_CNAME_CHAIN = 8
IN = dns.rdataclass.IN
T = dns.rdatatype
PROTOCOLS = {"_tcp": "TCP", "_udp": "UDP", "_sctp": "SCTP"}
REVERSE_ZONES = (dns.name.from_text("in-addr.arpa."), dns.name.from_text("ip6.arpa."))


@dataclass(frozen=True)
class Zone:
    origin: dns.name.Name
    dns_ip: str  # the DNS Service's ClusterIP: the address of ns.dns.<zone>
    ttl: int = TTL

    @classmethod
    def of(cls, domain: str, dns_ip: str, *, ttl: int = TTL) -> Zone:
        return cls(dns.name.from_text(domain.strip(".") + "."), dns_ip, ttl)

    def name(self, *labels: str) -> dns.name.Name:
        return _zone_name(self.origin, labels)

    def soa(self, serial: int) -> dns.rrset.RRset:
        rdata = SOA(IN, T.SOA, self.name("ns", "dns"), self.name("hostmaster"), serial & 0xFFFFFFFF,
                    7200, 1800, 86400, self.ttl)
        return dns.rrset.from_rdata(self.origin, self.ttl, rdata)


@dataclass
class Node:
    """What one name holds: rdata by type, or a CNAME; `additional` goes with SRV answers."""
    rdatas: dict[int, list[dns.rdata.Rdata]] = field(default_factory=dict)
    cname: dns.name.Name | None = None
    additional: list[dns.rrset.RRset] = field(default_factory=list)

    def add(self, rdtype: int, rdata: dns.rdata.Rdata) -> None:
        self.rdatas.setdefault(rdtype, []).append(rdata)


@dataclass
class Reply:
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    chase: dns.name.Name | None = None  # an out-of-zone CNAME target the server looks up upstream


def resolve(qname: dns.name.Name, qtype: int, index: ClusterIndex, zone: Zone) -> Reply | None:
    if qname.is_subdomain(zone.origin):
        return _answer_in_zone(qname, qtype, index, zone)
    if qtype == T.PTR and any(qname.is_subdomain(z) for z in REVERSE_ZONES):
        return _answer_reverse(qname, index, zone)
    return None


def _answer_in_zone(qname: dns.name.Name, qtype: int, index: ClusterIndex, zone: Zone) -> Reply:
    reply, owner = Reply(), qname
    for _ in range(MAX_CNAME_CHAIN):
        node = lookup(owner.relativize(zone.origin), index, zone, qtype=qtype)
        if node is None:
            return _negative(reply, dns.rcode.NXDOMAIN, index, zone)
        if node.cname is None or qtype == T.CNAME:
            break
        reply.answer.append(dns.rrset.from_rdata(owner, zone.ttl, CNAME(IN, T.CNAME, node.cname)))
        if not node.cname.is_subdomain(zone.origin):
            reply.chase = node.cname
            return reply
        owner = node.cname
    else:
        return _negative(Reply(), dns.rcode.SERVFAIL, index, zone)  # an ExternalName loop
    if node.cname is not None:  # qtype CNAME
        reply.answer.append(dns.rrset.from_rdata(owner, zone.ttl, CNAME(IN, T.CNAME, node.cname)))
        return reply
    types = [t for t in (list(node.rdatas) if qtype == T.ANY else [qtype]) if node.rdatas.get(t)]
    if not types:  # NODATA, possibly at the end of a CNAME chain
        return _negative(reply, dns.rcode.NOERROR, index, zone)
    for rdtype in types:
        reply.answer.append(dns.rrset.from_rdata_list(owner, zone.ttl, node.rdatas[rdtype]))
    if qtype in (T.SRV, T.NS, T.ANY):
        reply.additional.extend(node.additional)
    return reply


def _negative(reply: Reply, rcode: dns.rcode.Rcode, index: ClusterIndex, zone: Zone) -> Reply:
    reply.rcode = rcode
    reply.authority.append(zone.soa(index.serial))
    return reply


# ----- names -> nodes ----------------------------------------------------------------------------

def lookup(relative: dns.name.Name, index: ClusterIndex, zone: Zone, *, qtype: int = T.ANY) -> Node | None:
    """The node at a zone-relative name, None if no such name exists. Records of types other than
    `qtype` may be left out where building them costs (a Service's SRV set)."""
    labels = [label.decode("ascii", "replace").lower() for label in reversed(relative.labels)]
    if not labels:
        return _apex(index, zone)
    if labels == ["dns-version"]:
        node = Node()
        node.add(T.TXT, TXT(IN, T.TXT, [SCHEMA_VERSION.encode()]))
        return node
    if labels in (["dns"], ["dns", "ns"]):
        node = Node()
        if len(labels) == 2:
            _add_address(node, zone.dns_ip)
        return node
    if labels[0] == "svc":
        return _services(labels[1:], index, zone, qtype)
    if labels[0] == "pod":
        return _pods(labels[1:], index)
    return None


def _apex(index: ClusterIndex, zone: Zone) -> Node:
    node = Node()
    node.add(T.SOA, zone.soa(index.serial)[0])
    ns_name = zone.name("ns", "dns")
    node.add(T.NS, NS(IN, T.NS, ns_name))
    glue = Node()
    _add_address(glue, zone.dns_ip)
    node.additional = [dns.rrset.from_rdata_list(ns_name, zone.ttl, rdatas) for rdatas in glue.rdatas.values()]
    return node


def _services(labels: list[str], index: ClusterIndex, zone: Zone, qtype: int) -> Node | None:
    """labels below `svc`, outermost first: [ns, svc, ...]."""
    if not labels:
        return Node()
    namespace = labels[0]
    if len(labels) == 1:
        return Node() if index.namespace_has_services(namespace) else None
    service = index.service(namespace, labels[1])
    if service is None:
        return None
    rest = labels[2:]
    if not rest:
        return _service_node(service, index, zone, qtype)
    if service.external_name:
        return None
    if len(rest) == 1 and rest[0] in PROTOCOLS:
        return Node() if _srv_node(service, "", PROTOCOLS[rest[0]], index, zone) else None
    if len(rest) == 2 and rest[0] in PROTOCOLS and rest[1].startswith("_"):
        return _srv_node(service, rest[1][1:], PROTOCOLS[rest[0]], index, zone)
    if len(rest) == 1:
        return _endpoint_node(service, rest[0], index)
    return None


def _service_node(service: Service, index: ClusterIndex, zone: Zone, qtype: int) -> Node | None:
    node = Node()
    if service.external_name:
        node.cname = dns.name.from_text(service.external_name + ".")
        return node
    if service.headless:
        endpoints = ready_endpoints(index.service_slices(service.namespace, service.name))
        if not endpoints:
            return None
        for ip in sorted({ep.ip for ep, _ in endpoints}, key=_ip_sort_key):
            _add_address(node, ip)
    else:
        for ip in service.cluster_ips:
            _add_address(node, ip)
    srv = _srv_node(service, "", "", index, zone) if qtype in (T.SRV, T.ANY) else None
    if srv is not None:
        node.rdatas[T.SRV] = srv.rdatas.get(T.SRV, [])
        node.additional = srv.additional
    return node


def _endpoint_node(service: Service, label: str, index: ClusterIndex) -> Node | None:
    node = Node()
    for endpoint, _ in ready_endpoints(index.service_slices(service.namespace, service.name)):
        if endpoint_label(endpoint) == label:
            _add_address(node, endpoint.ip)
    return node if node.rdatas else None


def _srv_node(service: Service, port_name: str, protocol: str, index: ClusterIndex,
              zone: Zone) -> Node | None:
    """SRV records of the Service's named ports matching port_name/protocol ("" matches any)."""
    targets: list[tuple[dns.name.Name, int, list[str]]] = []
    if service.headless:
        for endpoint, ports in ready_endpoints(index.service_slices(service.namespace, service.name)):
            name = zone.name(endpoint_label(endpoint), service.name, service.namespace, "svc")
            targets.extend((name, p.port, [endpoint.ip]) for p in _matching(ports, port_name, protocol))
    else:
        name = zone.name(service.name, service.namespace, "svc")
        targets.extend((name, p.port, list(service.cluster_ips))
                       for p in _matching(service.ports, port_name, protocol))
    if not targets:
        return None
    node, weight = Node(), max(1, 100 // len(targets))
    glue: dict[dns.name.Name, Node] = {}
    for target, port, ips in targets:
        node.add(T.SRV, SRV(IN, T.SRV, 0, weight, port, target))
        for ip in ips:
            _add_address(glue.setdefault(target, Node()), ip)
    node.additional = [dns.rrset.from_rdata_list(name, zone.ttl, rdatas)
                       for name, held in glue.items() for rdatas in held.rdatas.values()]
    return node


def _matching(ports: tuple[Port, ...], name: str, protocol: str) -> list[Port]:
    return [p for p in ports if p.name and (not name or p.name == name)
            and (not protocol or p.protocol == protocol)]


def _pods(labels: list[str], index: ClusterIndex) -> Node | None:
    """labels below `pod`: [ns, dashed-ip]."""
    if not labels:
        return Node()
    if len(labels) == 1:
        return Node() if index.namespace_has_pods(labels[0]) else None
    if len(labels) != 2:
        return None
    ip = ip_from_label(labels[1])
    if ip is None or not index.pod_has_ip(labels[0], ip):
        return None
    node = Node()
    _add_address(node, ip)
    return node


# ----- reverse -----------------------------------------------------------------------------------

def _answer_reverse(qname: dns.name.Name, index: ClusterIndex, zone: Zone) -> Reply | None:
    try:
        ip = dns.reversename.to_address(qname)
    except Exception:
        return None
    targets = [zone.name(s.name, s.namespace, "svc") for s in index.services_with_ip(ip)]
    targets += [zone.name(endpoint_label(ep), s.name, s.namespace, "svc")
                for s, ep in index.headless_endpoints_with_ip(ip)]
    if not targets:
        return None  # not a cluster address: the host's resolvers may know it
    rdatas = [PTR(IN, T.PTR, target) for target in dict.fromkeys(targets)]
    return Reply(answer=[dns.rrset.from_rdata_list(qname, zone.ttl, rdatas)])


# ----- helpers -----------------------------------------------------------------------------------

def ready_endpoints(slices: list[Slice]) -> list[tuple[Endpoint, tuple[Port, ...]]]:
    """Each ready endpoint once (slices may overlap while the controller moves endpoints), with the
    ports of the slice it came from."""
    seen: dict[tuple[str, str], tuple[Endpoint, tuple[Port, ...]]] = {}
    for record in slices:
        for endpoint in record.endpoints:
            seen.setdefault((endpoint.ip, endpoint.hostname), (endpoint, record.ports))
    return list(seen.values())


def endpoint_label(endpoint: Endpoint) -> str:
    return endpoint.hostname or dashed_ip(endpoint.ip)


def dashed_ip(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def ip_from_label(label: str) -> str | None:
    """1-2-3-4 -> 1.2.3.4; fd00--1 -> fd00::1; None if the label is no IP."""
    for candidate in (label.replace("-", "."), label.replace("-", ":")):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def _ip_sort_key(ip: str) -> tuple[int, int]:
    address = ipaddress.ip_address(ip)
    return address.version, int(address)


def _add_address(node: Node, ip: str) -> None:
    node.add(*_address_rdata(ip))


# Rdata and names are immutable in dnspython, so the ones every answer repeats are built once.
@functools.lru_cache(maxsize=65536)
def _address_rdata(ip: str) -> tuple[int, dns.rdata.Rdata]:
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return T.A, A(IN, T.A, str(address))
    return T.AAAA, AAAA(IN, T.AAAA, str(address))


@functools.lru_cache(maxsize=65536)
def _zone_name(origin: dns.name.Name, labels: tuple[str, ...]) -> dns.name.Name:
    return dns.name.Name([label.encode() for label in labels]).concatenate(origin)

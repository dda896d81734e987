"""What a node's proxy needs from the API, as plain data: one `ServicePort` per (Service, port),
with the endpoints its EndpointSlices list for that port, and which of them this node should use.

Pure: functions of API objects (dicts) only, shared by the nftables model and the userspace
fallback. Upstream facts kept here (kube-proxy's ServiceChangeTracker/EndpointsChangeTracker):
- Services without a ClusterIP (headless, ExternalName) and Services labelled
  `service.kubernetes.io/service-proxy-name` (another proxy's) or `service.kubernetes.io/headless`
  are not proxied.
- EndpointSlice ports are matched to Service ports by (name, protocol); the slice carries the
  resolved number, so named target ports need no pod lookup here.
- An endpoint's `ready` and `serving` conditions default to true when absent, `terminating` to
  false; the same address:port listed by two slices counts once (the ready copy wins).
- Endpoint choice (CategorizeEndpoints): the ready ones; when none is ready, the ones still serving
  while terminating (so a rolling update's last old pod keeps answering until it stops serving).
  Local-policy traffic uses the same rule restricted to endpoints on this node.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_PROXY_NAME = "service.kubernetes.io/service-proxy-name"
LABEL_HEADLESS = "service.kubernetes.io/headless"
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds, upstream's sessionAffinityConfig.clientIP default
PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    node: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str  # lower case: tcp, udp, sctp
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    lb_ips: tuple[str, ...] = ()
    affinity_timeout: int = 0  # seconds; 0 means no session affinity
    external_local: bool = False  # externalTrafficPolicy: Local
    internal_local: bool = False  # internalTrafficPolicy: Local
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def id(self) -> str:
        """`ns/name/proto/portname`: unique per port, safe in nft names (no spaces or quotes)."""
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name}"

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.lb_ips)


def proxied(service: Obj) -> bool:
    """Whether kube-proxy's default instance handles this Service at all."""
    labels = (service.get("metadata") or {}).get("labels") or {}
    if LABEL_PROXY_NAME in labels or LABEL_HEADLESS in labels:
        return False
    return _cluster_ip(service) is not None


def _cluster_ip(service: Obj) -> str | None:
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return None
    for ip in [*(spec.get("clusterIPs") or []), spec.get("clusterIP")]:
        if ip and ip != "None" and _ipv4(str(ip)):
            return str(ip)
    return None


def _ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def service_key(obj: Obj) -> str:
    """`ns/name` of a Service, or of the Service an EndpointSlice belongs to ("" if none)."""
    meta = obj.get("metadata") or {}
    if obj.get("kind") == "EndpointSlice" or "endpoints" in obj or "addressType" in obj:
        owner = (meta.get("labels") or {}).get(LABEL_SERVICE_NAME)
        return f"{meta.get('namespace')}/{owner}" if owner else ""
    return f"{meta.get('namespace')}/{meta.get('name')}"


def service_ports(service: Obj, slices: Iterable[Obj]) -> list[ServicePort]:
    """The proxied ports of one Service with their endpoints, in spec order."""
    cluster_ip = _cluster_ip(service)
    if cluster_ip is None or not proxied(service):
        return []
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    slices = [s for s in slices if s.get("addressType", "IPv4") == "IPv4"]
    common = _common_fields(service)
    out = []
    for port in spec.get("ports") or []:
        protocol = str(port.get("protocol") or "TCP")
        if protocol not in PROTOCOLS or not port.get("port"):
            continue
        name = str(port.get("name") or "")
        node_port = int(port.get("nodePort") or 0) if spec.get("type") in ("NodePort", "LoadBalancer") else 0
        out.append(ServicePort(namespace=str(meta.get("namespace")), name=str(meta.get("name")), port_name=name,
                               protocol=protocol.lower(), cluster_ip=cluster_ip, port=int(port["port"]),
                               node_port=node_port, endpoints=slice_endpoints(slices, name, protocol), **common))
    return out


def _common_fields(service: Obj) -> Obj:
    spec, status = service.get("spec") or {}, service.get("status") or {}
    external_ips = tuple(ip for ip in spec.get("externalIPs") or [] if _ipv4(str(ip)))
    lb_ips: tuple[str, ...] = ()
    if spec.get("type") == "LoadBalancer":
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        # ipMode Proxy: the load balancer itself delivers to the nodes, so its address is not captured
        lb_ips = tuple(str(i["ip"]) for i in ingress if i.get("ip") and _ipv4(str(i["ip"]))
                       and i.get("ipMode") != "Proxy")
    timeout = 0
    if spec.get("sessionAffinity") == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        timeout = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    external = spec.get("type") in ("NodePort", "LoadBalancer") or bool(external_ips)
    return {"external_ips": external_ips, "lb_ips": lb_ips, "affinity_timeout": timeout,
            "external_local": external and spec.get("externalTrafficPolicy") == "Local",
            "internal_local": spec.get("internalTrafficPolicy") == "Local"}


def slice_endpoints(slices: Iterable[Obj], port_name: str, protocol: str) -> tuple[Endpoint, ...]:
    """Endpoints for one service port across slices, deduplicated by address, sorted for stable
    rule order."""
    found: dict[str, Endpoint] = {}
    for slice_ in slices:
        number = _slice_port(slice_, port_name, protocol)
        if number is None:
            continue
        for entry in slice_.get("endpoints") or []:
            for endpoint in _endpoints(entry, number):
                old = found.get(endpoint.address)
                if old is None or (endpoint.ready and not old.ready):
                    found[endpoint.address] = endpoint
    return tuple(sorted(found.values(), key=lambda e: (ipaddress.ip_address(e.ip), e.port)))


def _slice_port(slice_: Obj, port_name: str, protocol: str) -> int | None:
    for port in slice_.get("ports") or []:
        if str(port.get("name") or "") == port_name and (port.get("protocol") or "TCP") == protocol:
            return int(port["port"]) if port.get("port") else None
    return None


def _endpoints(entry: Obj, port: int) -> list[Endpoint]:
    conditions = entry.get("conditions") or {}
    node = str(entry.get("nodeName") or "")
    return [Endpoint(ip=str(ip), port=port, node=node, ready=conditions.get("ready") is not False,
                     serving=conditions.get("serving") is not False,
                     terminating=bool(conditions.get("terminating")))
            for ip in entry.get("addresses") or [] if _ipv4(str(ip))]


@dataclass(frozen=True)
class Categorized:
    cluster: tuple[Endpoint, ...]  # for Cluster traffic policy
    local: tuple[Endpoint, ...]  # this node's, for Local traffic policy
    any_usable: bool  # some endpoint exists anywhere (else: reject)

    @property
    def reachable(self) -> tuple[Endpoint, ...]:
        """Every endpoint some chain may DNAT to (cluster first, then local-only extras)."""
        return self.cluster + tuple(e for e in self.local if e not in self.cluster)


def categorize(sp: ServicePort, node_name: str) -> Categorized:
    # Cluster endpoints are needed even under external Local policy: pod and host traffic to an
    # external address short-circuits to them.
    uses_cluster = not sp.internal_local or sp.externally_accessible
    uses_local = sp.internal_local or sp.external_local
    return Categorized(cluster=_usable(sp.endpoints) if uses_cluster else (),
                       local=_usable(tuple(e for e in sp.endpoints if e.node == node_name)) if uses_local else (),
                       any_usable=bool(_usable(sp.endpoints)))


def _usable(endpoints: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
    ready = tuple(e for e in endpoints if e.ready)
    return ready or tuple(e for e in endpoints if e.serving and e.terminating)


def node_addresses(node: Obj | None, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """NodePort addresses: the given ones plus the Node's InternalIP/ExternalIP (IPv4, not
    loopback: upstream's nftables mode has no localhost NodePorts)."""
    found = [str(ip) for ip in extra]
    for address in ((node or {}).get("status") or {}).get("addresses") or []:
        if address.get("type") in ("InternalIP", "ExternalIP"):
            found.append(str(address.get("address")))
    return tuple(dict.fromkeys(ip for ip in found if _ipv4(ip) and not ipaddress.ip_address(ip).is_loopback))

"""Service, Endpoints and EndpointSlice tables.

The server always renders the wide form, so LoadBalancer addresses are never clipped to 16 bytes
(upstream clips only when printing narrow output itself).
"""

from __future__ import annotations

from datetime import datetime

from kubelite.objects.tables.common import (
    AGE,
    NAME,
    NONE,
    Cell,
    Column,
    Obj,
    Printer,
    age_of,
    get,
    integer,
    items,
    name_of,
    strings,
    text,
)
from kubelite.objects.tables.selectors import format_labels

SERVICE_COLUMNS = (
    NAME,
    Column("Type", description="type determines how the Service is exposed. Defaults to ClusterIP. Valid "
                               "options are ExternalName, ClusterIP, NodePort, and LoadBalancer."),
    Column("Cluster-IP", description="clusterIP is the IP address of the service and is usually assigned "
                                     "randomly."),
    Column("External-IP", description="externalIPs is a list of IP addresses for which nodes in the cluster "
                                      "will also accept traffic for this service."),
    Column("Port(s)", description="The list of ports that are exposed by this service."),
    AGE,
    Column("Selector", priority=1, description="Route service traffic to pods with label keys and values "
                                               "matching this selector."),
)
ENDPOINTS_COLUMNS = (
    NAME,
    Column("Endpoints", description="The set of all endpoints is the union of all subsets."),
    AGE,
)
ENDPOINT_SLICE_COLUMNS = (
    NAME,
    Column("AddressType", description="addressType specifies the type of address carried by this "
                                      "EndpointSlice."),
    Column("Ports", description="ports specifies the list of network ports exposed by each endpoint in "
                                "this slice."),
    Column("Endpoints", description="endpoints is a list of unique endpoints in this slice."),
    AGE,
)

_MAX_LISTED = 3


def _load_balancer_addresses(svc: Obj) -> list[str]:
    found = {text(i, "ip") or text(i, "hostname") for i in items(svc, "status", "loadBalancer", "ingress")}
    return sorted(found - {""})


def _external_ip(svc: Obj, svc_type: str) -> str:
    external = strings(svc, "spec", "externalIPs")
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or NONE
    if svc_type == "LoadBalancer":
        return ",".join(_load_balancer_addresses(svc) + external) or "<pending>"
    if svc_type == "ExternalName":
        return text(svc, "spec", "externalName")
    return "<unknown>"


def _ports(svc: Obj) -> str:
    pieces = []
    for port in items(svc, "spec", "ports"):
        protocol = text(port, "protocol") or "TCP"
        node_port = integer(port, "nodePort")
        middle = f":{node_port}" if node_port > 0 else ""
        pieces.append(f"{integer(port, 'port')}{middle}/{protocol}")
    return ",".join(pieces) or NONE


def _cluster_ip(svc: Obj) -> str:
    ips = strings(svc, "spec", "clusterIPs")
    if ips:
        return ips[0]
    return text(svc, "spec", "clusterIP") or NONE


def service_cells(svc: Obj, now: datetime) -> list[Cell]:
    svc_type = text(svc, "spec", "type") or "ClusterIP"
    return [
        name_of(svc), svc_type, _cluster_ip(svc), _external_ip(svc, svc_type), _ports(svc),
        age_of(svc, now), format_labels(get(svc, "spec", "selector")),
    ]


def _join_host_port(host: str, port: int) -> str:
    """Go's `net.JoinHostPort`: brackets around any host containing a colon."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _with_more(listed: list[str], total: int) -> str:
    joined = ",".join(listed)
    return f"{joined} + {total - _MAX_LISTED} more..." if total > len(listed) else joined


def format_endpoints(endpoints: Obj) -> str:
    """Upstream `formatEndpoints`: up to three `ip:port` entries, then `+ N more...`."""
    subsets = items(endpoints, "subsets")
    if not subsets:
        return NONE
    listed: list[str] = []
    total = 0
    for subset in subsets:
        ips = [text(a, "ip") for a in items(subset, "addresses")]
        ports = items(subset, "ports")
        # Headless services may have no ports: list bare IPs.
        groups = [ips] if not ports else [[_join_host_port(ip, integer(p, "port")) for ip in ips] for p in ports]
        for group in groups:
            total += len(group)
            listed.extend(group[:_MAX_LISTED - len(listed)])
    return _with_more(listed, total)


def _listed(values: list[str]) -> str:
    """Upstream `listWithMoreString` over a flat list: `<unset>` when it renders empty."""
    return _with_more(values[:_MAX_LISTED], len(values)) or "<unset>"


def _slice_port(port: Obj) -> str:
    if isinstance(get(port, "port"), int):
        return str(integer(port, "port"))
    if isinstance(get(port, "name"), str):
        return text(port, "name")
    return "*"


def endpoints_cells(endpoints: Obj, now: datetime) -> list[Cell]:
    return [name_of(endpoints), format_endpoints(endpoints), age_of(endpoints, now)]


def endpoint_slice_cells(eps: Obj, now: datetime) -> list[Cell]:
    ports = [_slice_port(p) for p in items(eps, "ports")]
    addresses = [a for e in items(eps, "endpoints") for a in strings(e, "addresses")]
    return [name_of(eps), text(eps, "addressType"), _listed(ports), _listed(addresses), age_of(eps, now)]


PRINTERS = {
    "services": Printer(SERVICE_COLUMNS, service_cells),
    "endpoints": Printer(ENDPOINTS_COLUMNS, endpoints_cells),
    "endpointslices.discovery.k8s.io": Printer(ENDPOINT_SLICE_COLUMNS, endpoint_slice_cells),
}

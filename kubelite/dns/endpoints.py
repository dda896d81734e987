"""The kube-dns Service's endpoints: the addresses this server's DNS listens on.

The DNS server is part of kubelite rather than pods, so nothing else writes them: each server
publishes its routable listen addresses (loopback ones are useless to pods and refused by
Endpoints validation) as the Endpoints object and one EndpointSlice of its own, which the node
proxies turn into DNAT rules from the Service's ClusterIP:53 to `address:port`. Several servers
sharing a store each own a slice named after their identity; the Endpoints object lists the
addresses of the one that wrote last (kubectl reads slices for `describe`). Pure builders plus one
idempotent `publish` (create, else replace).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from kubelite.client.resources import ENDPOINTS, ENDPOINTSLICES, ResourceType
from kubelite.client.rest import Client
from kubelite.dns.service import LABELS, NAME, NAMESPACE
from kubelite.objects.errors import Conflict, NotFound

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MANAGED_BY = "kubelite-dns"


def routable(listen: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The IPv4 listen addresses pods can reach (not loopback, not unspecified)."""
    found = []
    for host, port in listen:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            continue
        if address.version == 4 and not (address.is_loopback or address.is_unspecified):
            found.append((host, port))
    return found


def _ports(port: int) -> list[Obj]:
    return [{"name": "dns", "port": port, "protocol": "UDP"},
            {"name": "dns-tcp", "port": port, "protocol": "TCP"}]


def endpoints_object(listen: list[tuple[str, int]]) -> Obj:
    subsets = [{"addresses": [{"ip": host}], "ports": _ports(port)} for host, port in listen]
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS)}, "subsets": subsets}


def endpoint_slice(listen: list[tuple[str, int]], *, owner: str) -> Obj:
    """One slice per port: a slice's ports apply to all its endpoints, and listeners may differ in port."""
    port = listen[0][1]
    endpoints = [{"addresses": [host], "conditions": {"ready": True, "serving": True, "terminating": False}}
                 for host, p in listen if p == port]
    labels = {**LABELS, "kubernetes.io/service-name": NAME, "endpointslice.kubernetes.io/managed-by": MANAGED_BY}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{NAME}-{owner}", "namespace": NAMESPACE, "labels": labels},
            "addressType": "IPv4", "endpoints": endpoints, "ports": _ports(port)}


async def publish(client: Client, listen: list[tuple[str, int]], *, owner: str) -> bool:
    """Write this server's DNS endpoints; False when it has no routable listener."""
    reachable = routable(listen)
    if not reachable:
        log.info("cluster DNS listens on no routable address; kube-dns gets no endpoints")
        return False
    await _put(client, ENDPOINTS, endpoints_object(reachable))
    await _put(client, ENDPOINTSLICES, endpoint_slice(reachable, owner=owner))
    log.info("kube-dns endpoints: %s", ", ".join(f"{h}:{p}" for h, p in reachable))
    return True


async def _put(client: Client, resource: ResourceType, obj: Obj) -> None:
    name = obj["metadata"]["name"]
    for _ in range(5):
        try:
            current = await client.get(resource, name, namespace=NAMESPACE)
        except NotFound:
            await client.create(resource, obj, namespace=NAMESPACE)
            return
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        try:
            await client.update(resource, obj)
            return
        except Conflict:
            continue
    raise Conflict(f"{resource.plural} {name} kept changing")

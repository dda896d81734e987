"""What the cluster DNS knows about the cluster: compact records of Services, EndpointSlices and
Pods, indexed the ways DNS questions look them up.

Data flow: informer handlers call `put_*`/`delete_*` with API objects (plain dicts); the resolver
(`kubelite.dns.records`) reads through the lookup methods. Nothing here does I/O, so unit tests
fill an index from dicts and the server fills one from informers; both share this code.

Invariants: every secondary map is updated together with its primary map, so a lookup never sees
a record that is gone; `serial` grows whenever any record changes (it is the zone's SOA serial,
and the server's rendered-answer cache is only valid for one serial).
EndpointSlices keep only ready endpoints (a missing `ready` condition counts as ready, as upstream
DNS treats it), and pods only while they have IPs and are not terminal.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Port:
    name: str
    protocol: str  # TCP, UDP, SCTP
    port: int


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    cluster_ips: tuple[str, ...]  # empty for headless and ExternalName Services
    headless: bool
    external_name: str  # the CNAME target of an ExternalName Service, "" otherwise
    ports: tuple[Port, ...]


@dataclass(frozen=True)
class Endpoint:
    ip: str
    hostname: str  # "" when the endpoint has none


@dataclass(frozen=True)
class Slice:
    namespace: str
    service: str
    endpoints: tuple[Endpoint, ...]  # ready ones only
    ports: tuple[Port, ...]


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _key(obj: Obj) -> str:
    meta = _meta(obj)
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def _ports(entries: list[Obj] | None) -> tuple[Port, ...]:
    return tuple(Port(str(p.get("name") or ""), str(p.get("protocol") or "TCP"), int(p["port"]))
                 for p in entries or [] if p.get("port") is not None)


def service_record(obj: Obj) -> Service:
    meta, spec = _meta(obj), obj.get("spec") or {}
    external = spec.get("type") == "ExternalName"
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    headless = not external and (ips or [""])[0] == "None"
    return Service(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
                   cluster_ips=() if external or headless else tuple(ip for ip in ips if ip and ip != "None"),
                   headless=headless,
                   external_name=str(spec.get("externalName") or "").rstrip(".").lower() if external else "",
                   ports=_ports(spec.get("ports")))


def slice_record(obj: Obj) -> Slice | None:
    """The slice's ready endpoints, or None for slices DNS ignores (FQDN, or no owning Service)."""
    meta = _meta(obj)
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not service or obj.get("addressType") not in ("IPv4", "IPv6"):
        return None
    endpoints: list[Endpoint] = []
    for entry in obj.get("endpoints") or []:
        if (entry.get("conditions") or {}).get("ready") is False:
            continue
        hostname = str(entry.get("hostname") or "").lower()
        endpoints.extend(Endpoint(str(ip), hostname) for ip in entry.get("addresses") or [])
    return Slice(namespace=str(meta.get("namespace") or ""), service=str(service),
                 endpoints=tuple(endpoints), ports=_ports(obj.get("ports")))


def pod_ips(obj: Obj) -> tuple[str, ...]:
    status = obj.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return ()  # a terminal pod's IP goes back to the pool and may belong to another pod soon
    ips = [str(entry.get("ip")) for entry in status.get("podIPs") or [] if entry.get("ip")]
    return tuple(ips or ([str(status["podIP"])] if status.get("podIP") else []))


class ClusterIndex:
    def __init__(self) -> None:
        self.services: dict[tuple[str, str], Service] = {}
        self.slices: dict[str, Slice] = {}
        self._slices_by_service: dict[tuple[str, str], set[str]] = {}
        self._slices_by_ip: dict[str, set[str]] = {}
        self._services_per_namespace: Counter[str] = Counter()
        self._services_by_ip: dict[str, set[tuple[str, str]]] = {}
        self._pods: dict[str, tuple[str, tuple[str, ...]]] = {}  # pod key -> (namespace, IPs)
        self._pod_ips: Counter[tuple[str, str]] = Counter()
        self._pods_per_namespace: Counter[str] = Counter()
        self.serial = int(time.time())

    def _touch(self) -> None:
        self.serial = max(self.serial + 1, int(time.time()))

    # ----- updates (from informer handlers) -------------------------------------------------------

    def put_service(self, obj: Obj) -> None:
        self.delete_service(obj)
        record = service_record(obj)
        key = (record.namespace, record.name)
        self.services[key] = record
        self._services_per_namespace[record.namespace] += 1
        for ip in record.cluster_ips:
            self._services_by_ip.setdefault(ip, set()).add(key)
        self._touch()

    def delete_service(self, obj: Obj) -> None:
        meta = _meta(obj)
        record = self.services.pop((str(meta.get("namespace") or ""), str(meta.get("name") or "")), None)
        if record is None:
            return
        _decrement(self._services_per_namespace, record.namespace)
        for ip in record.cluster_ips:
            owners = self._services_by_ip.get(ip, set())
            owners.discard((record.namespace, record.name))
            if not owners:
                self._services_by_ip.pop(ip, None)
        self._touch()

    def put_slice(self, obj: Obj) -> None:
        self.delete_slice(obj)
        record = slice_record(obj)
        if record is None:
            return
        key = _key(obj)
        self.slices[key] = record
        self._slices_by_service.setdefault((record.namespace, record.service), set()).add(key)
        for endpoint in record.endpoints:
            self._slices_by_ip.setdefault(endpoint.ip, set()).add(key)
        self._touch()

    def delete_slice(self, obj: Obj) -> None:
        key = _key(obj)
        record = self.slices.pop(key, None)
        if record is None:
            return
        owned = self._slices_by_service.get((record.namespace, record.service), set())
        owned.discard(key)
        if not owned:
            self._slices_by_service.pop((record.namespace, record.service), None)
        for endpoint in record.endpoints:
            holders = self._slices_by_ip.get(endpoint.ip, set())
            holders.discard(key)
            if not holders:
                self._slices_by_ip.pop(endpoint.ip, None)
        self._touch()

    def put_pod(self, obj: Obj) -> None:
        self.delete_pod(obj)
        ips = pod_ips(obj)
        if not ips:
            return
        namespace = str(_meta(obj).get("namespace") or "")
        self._pods[_key(obj)] = (namespace, ips)
        self._pods_per_namespace[namespace] += 1
        for ip in ips:
            self._pod_ips[(namespace, ip)] += 1
        self._touch()

    def delete_pod(self, obj: Obj) -> None:
        entry = self._pods.pop(_key(obj), None)
        if entry is None:
            return
        namespace, ips = entry
        _decrement(self._pods_per_namespace, namespace)
        for ip in ips:
            _decrement(self._pod_ips, (namespace, ip))
        self._touch()

    # ----- lookups ----------------------------------------------------------------------------

    def service(self, namespace: str, name: str) -> Service | None:
        return self.services.get((namespace, name))

    def service_slices(self, namespace: str, name: str) -> list[Slice]:
        keys = self._slices_by_service.get((namespace, name), ())
        return [self.slices[k] for k in sorted(keys)]

    def namespace_has_services(self, namespace: str) -> bool:
        return self._services_per_namespace[namespace] > 0

    def namespace_has_pods(self, namespace: str) -> bool:
        return self._pods_per_namespace[namespace] > 0

    def pod_has_ip(self, namespace: str, ip: str) -> bool:
        return self._pod_ips[(namespace, ip)] > 0

    def services_with_ip(self, ip: str) -> list[Service]:
        return [self.services[k] for k in sorted(self._services_by_ip.get(ip, ()))]

    def headless_endpoints_with_ip(self, ip: str) -> list[tuple[Service, Endpoint]]:
        """(Service, endpoint) pairs of headless Services with a ready endpoint at `ip` (for PTR)."""
        found: list[tuple[Service, Endpoint]] = []
        for key in sorted(self._slices_by_ip.get(ip, ())):
            record = self.slices[key]
            service = self.services.get((record.namespace, record.service))
            if service is None or not service.headless:
                continue
            found.extend((service, ep) for ep in record.endpoints if ep.ip == ip)
        return found


def _decrement(counter: Counter[Any], key: Any) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]

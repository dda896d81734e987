"""The Endpoints controller: for every Service with a selector, a core/v1 Endpoints object of the
same name listing the selected pods (upstream's endpoint controller), plus the API server's own
endpoint reconciler for the `kubernetes` Service in `default`.

Data flow: Service, Pod and Endpoints informers -> handlers enqueue Service keys -> `sync` builds
the subsets from the caches (pure `build_subsets`) and creates, updates or deletes the Endpoints.
Ready pods go to `addresses`, others to `notReadyAddresses` (all to `addresses` with
publishNotReadyAddresses); pods without an IP, terminal pods and (unless publishing not-ready
addresses) terminating pods are left out. Subsets are repacked as upstream's RepackSubsets does:
addresses offering the same ports share a subset, so pods whose named targetPort resolves to
different numbers land in different subsets.

Invariants: Services without a selector keep their user-managed Endpoints (but an Endpoints whose
Service is gone is deleted, as upstream); writes carry the cached resourceVersion, so a sync on a
stale cache fails with a conflict and is retried instead of acting twice.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import math
from typing import Any

from kubelite.client import Handlers
from kubelite.client.resources import ENDPOINTS, ENDPOINTSLICES, PODS, SERVICES
from kubelite.controllers.base import Controller, split_key
from kubelite.controllers.endpointslice import util
from kubelite.controllers.endpointslice.controller import namespace_terminating
from kubelite.objects.errors import Forbidden, NotFound
from kubelite.objects.validation.core import non_special_ip

Obj = dict[str, Any]

MAX_CAPACITY = 1000
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
MASTER_KEY = "default/kubernetes"

_NO_PORTS: tuple[Any, ...] = ()  # the "port" of a headless service without ports


# ----- pure: subsets -----------------------------------------------------------------------------

def pod_address(service: Obj, pod: Obj) -> Obj | None:
    """The pod's address in the service's primary family, or None if it has none."""
    ips = util.pod_ips_of_family(pod, util.address_families(service)[0])
    if not ips:
        return None
    meta, spec = pod["metadata"], pod.get("spec") or {}
    address: Obj = {"ip": ips[0]}
    if util.should_set_hostname(pod, service):
        address["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    address["targetRef"] = {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta.get("name"),
                            "uid": meta.get("uid")}
    return address


def _endpoint_port(service_port: Obj, number: int) -> tuple[Any, ...]:
    return (service_port.get("name") or "", number, service_port.get("protocol") or "TCP",
            service_port.get("appProtocol") or "")


def build_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    entries: list[tuple[Obj, tuple[Any, ...], bool]] = []
    for pod in pods:
        if not util.should_include(pod, include_terminating=publish):
            continue
        address = pod_address(service, pod)
        if address is None:
            continue
        ready = publish or util.is_pod_ready(pod)
        if not spec.get("ports"):
            if spec.get("clusterIP") == "None":  # headless services may have no ports
                entries.append((address, _NO_PORTS, ready))
            continue
        for service_port in spec["ports"]:
            number = util.find_port(pod, service_port)
            if number is not None:
                entries.append((address, _endpoint_port(service_port, number), ready))
    return repack(entries)


def _address_key(address: Obj) -> tuple[str, str]:
    return str(address["ip"]), str((address.get("targetRef") or {}).get("uid") or "")


def repack(entries: list[tuple[Obj, tuple[Any, ...], bool]]) -> list[Obj]:
    """Canonical subsets: addresses grouped by the exact set of ports they offer (not-ready wins
    over ready for an address listed twice), everything sorted."""
    addresses: dict[tuple[str, str], Obj] = {}
    by_port: dict[tuple[Any, ...], dict[tuple[str, str], bool]] = {}
    for address, port, ready in entries:
        key = _address_key(address)
        addresses.setdefault(key, address)
        readiness = by_port.setdefault(port, {})
        readiness[key] = readiness.get(key, True) and ready
    ports_by_group: dict[frozenset[tuple[tuple[str, str], bool]], list[tuple[Any, ...]]] = {}
    for port, readiness in by_port.items():
        ports_by_group.setdefault(frozenset(readiness.items()), []).append(port)
    subsets = [_subset(group, ports, addresses) for group, ports in ports_by_group.items()]
    return sorted(subsets, key=_subset_order)


def _subset(group: frozenset[tuple[tuple[str, str], bool]], ports: list[tuple[Any, ...]],
            addresses: dict[tuple[str, str], Obj]) -> Obj:
    subset: Obj = {}
    ready = sorted(key for key, is_ready in group if is_ready)
    not_ready = sorted(key for key, is_ready in group if not is_ready)
    if ready:
        subset["addresses"] = [copy.deepcopy(addresses[key]) for key in ready]
    if not_ready:
        subset["notReadyAddresses"] = [copy.deepcopy(addresses[key]) for key in not_ready]
    real_ports = sorted(p for p in ports if p != _NO_PORTS)
    if real_ports:
        subset["ports"] = [_port_dict(p) for p in real_ports]
    return subset


def _port_dict(port: tuple[Any, ...]) -> Obj:
    name, number, protocol, app_protocol = port
    result: Obj = {"name": name, "port": number, "protocol": protocol} if name else \
        {"port": number, "protocol": protocol}
    if app_protocol:
        result["appProtocol"] = app_protocol
    return result


def _subset_order(subset: Obj) -> tuple[Any, ...]:
    ports = [(p.get("name", ""), p["port"], p["protocol"]) for p in subset.get("ports") or []]
    first = (subset.get("addresses") or subset.get("notReadyAddresses") or [{}])[0]
    return ports, str(first.get("ip", ""))


def truncate(subsets: list[Obj], capacity: int = MAX_CAPACITY) -> bool:
    """Keep at most `capacity` addresses, ready ones first, each subset keeping its share
    (upstream's truncateEndpoints). True if anything was cut."""
    total_ready = sum(len(s.get("addresses") or []) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if total_ready + total_not_ready <= capacity:
        return False
    cut_ready = total_ready > capacity
    field, room, total = ("addresses", capacity, total_ready) if cut_ready else \
        ("notReadyAddresses", capacity - total_ready, total_not_ready)
    left = room
    for subset in subsets:
        share = min(math.ceil(len(subset.get(field) or []) / total * room), left)
        subset[field] = (subset.get(field) or [])[:share]
        left -= len(subset[field])
        if cut_ready:
            subset.pop("notReadyAddresses", None)
        if not subset[field]:
            del subset[field]
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


def desired_labels(service: Obj) -> dict[str, str]:
    labels = {k: v for k, v in ((service.get("metadata") or {}).get("labels") or {}).items()
              if k != util.LABEL_HEADLESS}
    if util.is_headless(service):
        labels[util.LABEL_HEADLESS] = ""
    return labels


def normalized(subsets: list[Obj] | None) -> list[Obj]:
    """Subsets as compared: no empty lists, no target resourceVersions."""
    result = []
    for subset in subsets or []:
        clean = {k: copy.deepcopy(v) for k, v in subset.items() if v}
        for field in ("addresses", "notReadyAddresses"):
            for address in clean.get(field) or []:
                (address.get("targetRef") or {}).pop("resourceVersion", None)
        result.append(clean)
    return result


def desired_endpoints(service: Obj, pods: list[Obj], current: Obj | None) -> Obj | None:
    """The Endpoints to write for a selector Service, or None when `current` is already right."""
    subsets = build_subsets(service, pods)
    truncated = truncate(subsets)
    labels = desired_labels(service)
    annotations = dict(((current or {}).get("metadata") or {}).get("annotations") or {})
    if truncated:
        annotations[OVER_CAPACITY] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY, None)
    if current is not None and normalized(current.get("subsets")) == subsets and \
            (current["metadata"].get("labels") or {}) == labels and \
            (current["metadata"].get("annotations") or {}) == annotations:
        return None
    result: Obj = copy.deepcopy(current) if current is not None else {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": service["metadata"]["name"], "namespace": service["metadata"]["namespace"]}}
    result["metadata"]["labels"], result["subsets"] = labels, subsets
    result["metadata"]["annotations"] = annotations
    if not annotations:
        result["metadata"].pop("annotations")
    return result


# ----- pure: the API server's own endpoints ------------------------------------------------------

def master_endpoints(ip: str, port: int) -> Obj:
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {util.LABEL_SKIP_MIRROR: "true"}},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}


def master_slice(ip: str, port: int) -> Obj:
    family = "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {util.LABEL_SERVICE_NAME: "kubernetes"}},
            "addressType": family, "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}


def needs_write(current: Obj | None, desired: Obj, fields: tuple[str, ...]) -> bool:
    if current is None:
        return True
    labels = (current.get("metadata") or {}).get("labels") or {}
    return labels != desired["metadata"]["labels"] or any(current.get(f) != desired[f] for f in fields)


# ----- the controller ----------------------------------------------------------------------------

class EndpointsController(Controller):
    name = "endpoints"
    workers = 4

    def name_for_events(self) -> str:
        return "endpoint-controller"

    def setup(self) -> None:
        self.services = self.informers.informer(SERVICES)
        self.pods = self.informers.informer(PODS)
        self.endpoints = self.informers.informer(ENDPOINTS)
        self.slices = self.informers.informer(ENDPOINTSLICES)
        self.services.add_index(util.NAMESPACE_INDEX, util.by_namespace)
        self.pods.add_index(util.NAMESPACE_INDEX, util.by_namespace)
        self.services.add_handlers(self.enqueue_handlers())
        self.pods.add_handlers(Handlers(on_add=self._pod_added, on_update=self._pod_updated,
                                        on_delete=self._pod_added))
        master_only = self.enqueue_handlers(lambda obj: MASTER_KEY if _master_object(obj) else None)
        self.endpoints.add_handlers(Handlers(on_add=master_only.on_add, on_update=master_only.on_update,
                                             on_delete=self.enqueue))
        self.slices.add_handlers(master_only)
        self._warned_address = False
        self._replaced: dict[str, str] = {}  # key -> resourceVersion our last write replaced

    async def run(self) -> None:
        # Endpoints whose Service went while we were not running: upstream's checkLeftoverEndpoints
        for endpoints in self.endpoints.list():
            if LEADER_ANNOTATION not in ((endpoints["metadata"].get("annotations")) or {}):
                self.enqueue(endpoints)
        await super().run()

    def _pod_added(self, pod: Obj) -> None:
        services = self.services.by_index(util.NAMESPACE_INDEX, util.by_namespace(pod)[0])
        for key in util.pod_memberships(services, pod):
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        services = self.services.by_index(util.NAMESPACE_INDEX, util.by_namespace(new)[0])
        for key in util.services_to_update(services, old, new):
            self.queue.add(key)

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        service = self.services.get(key)
        if service is None:
            self._replaced.pop(key, None)
            with contextlib.suppress(NotFound):
                await self.client.delete(ENDPOINTS, name, namespace)
            return
        if key == MASTER_KEY:
            await self._sync_master()
            return
        if not util.selects_pods(service):
            return
        pods = [p for p in self.pods.by_index(util.NAMESPACE_INDEX, namespace or "")
                if util.selector_matches(service["spec"]["selector"], p["metadata"].get("labels"))]
        current = self.endpoints.get(key)
        self._check_fresh(key, current)
        desired = desired_endpoints(service, pods, current)
        if desired is not None and await self._write(desired, create=current is None):
            self._replaced[key] = _version(current)

    def _check_fresh(self, key: str, current: Obj | None) -> None:
        """Fail (and so retry later) while the cache still shows what our last write replaced:
        acting on it would only end in a conflict (upstream's staleEndpointsTracker)."""
        if key in self._replaced and self._replaced[key] == _version(current):
            raise StaleEndpoints(f"Endpoints cache for {key} is out of date")
        self._replaced.pop(key, None)

    async def _write(self, endpoints: Obj, *, create: bool) -> bool:
        try:
            if create:
                await self.client.create(ENDPOINTS, endpoints)
            else:
                await self.client.update(ENDPOINTS, endpoints)
            return True
        except Forbidden as exc:
            if create and namespace_terminating(exc):
                return False
            raise
        except Exception as exc:
            reason, verb = ("FailedToCreateEndpoint", "create") if create else ("FailedToUpdateEndpoint", "update")
            meta = endpoints["metadata"]
            self.events.record(endpoints, "Warning", reason,
                               f"Failed to {verb} endpoint {meta['namespace']}/{meta['name']}: {exc}")
            raise

    async def _sync_master(self) -> None:
        """The apiserver endpoint reconciler: `kubernetes` points at this server."""
        if self.options is None:
            return
        ip, port = str(self.options.advertise_address), int(self.options.port)
        if non_special_ip(ip, "advertiseAddress"):
            if not self._warned_address:
                self.log.warning("not publishing endpoints for the kubernetes service: advertise address %s "
                                 "is not a valid endpoint IP (loopback, link-local or unspecified)", ip)
                self._warned_address = True
            return
        await self._put(ENDPOINTS, self.endpoints.get(MASTER_KEY), master_endpoints(ip, port), ("subsets",))
        await self._put(ENDPOINTSLICES, self.slices.get(MASTER_KEY), master_slice(ip, port),
                        ("addressType", "endpoints", "ports"))
        for slice_ in self.slices.list():
            meta = slice_["metadata"]
            if _master_object(slice_) and meta["name"] != "kubernetes":
                with contextlib.suppress(NotFound):
                    await self.client.delete(ENDPOINTSLICES, meta["name"], "default")

    async def _put(self, rt: Any, current: Obj | None, desired: Obj, fields: tuple[str, ...]) -> None:
        if not needs_write(current, desired, fields):
            return
        if current is None:
            await self.client.create(rt, desired)
            return
        updated = copy.deepcopy(current)
        updated["metadata"]["labels"] = desired["metadata"]["labels"]
        updated.update({f: desired[f] for f in fields})
        await self.client.update(rt, updated)


class StaleEndpoints(Exception):
    """The Endpoints cache has not caught up with our last write yet; retry shortly."""


def _version(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def _master_object(obj: Obj) -> bool:
    meta = obj.get("metadata") or {}
    if meta.get("namespace") != "default":
        return False
    return meta.get("name") == "kubernetes" or (meta.get("labels") or {}).get(util.LABEL_SERVICE_NAME) == "kubernetes"

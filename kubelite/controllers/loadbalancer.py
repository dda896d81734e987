"""A built-in LoadBalancer allocator (as k3s's servicelb or MetalLB in layer-2 mode): every
Service of type LoadBalancer without a loadBalancerClass gets one address from the pool
(`options.lb_pool`), published as `status.loadBalancer.ingress: [{ip, ipMode: VIP}]` through the
services/status subresource, so `kubectl get svc` shows it as EXTERNAL-IP.

Data flow: Service informer -> keys -> `sync` asks the pure `Pool.choose` for the address and
patches the status. The pool's map (address -> service) lives in memory; it is rebuilt from the
services' published status when the controller starts (oldest service wins a contested address),
so allocations are stable across restarts and leader changes. `spec.loadBalancerIP` is honoured
when it is in the pool and free; otherwise the service stays pending with a warning event, as
MetalLB does. Addresses are released when the service goes or stops being a LoadBalancer, and the
services still waiting for one are then retried.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kubelite.client.resources import SERVICES
from kubelite.controllers.base import Controller, split_key
from kubelite.objects.errors import NotFound

Obj = dict[str, Any]


def wants_address(service: Obj) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def ingress_ips(service: Obj) -> list[str]:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(entry["ip"]) for entry in ingress if entry.get("ip")]


def _key(service: Obj) -> str:
    meta = service.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


class Pool:
    """Addresses of one CIDR and who holds them. Pure: no I/O."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.holders: dict[str, str] = {}  # address -> service key
        self.addresses: dict[str, str] = {}  # service key -> address

    def contains(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return address in self.network and address not in self._reserved()

    def _reserved(self) -> set[Any]:
        if self.network.version == 4 and self.network.prefixlen < 31:
            return {self.network.network_address, self.network.broadcast_address}
        return set()

    def assign(self, key: str, ip: str) -> None:
        self.release(key)
        self.holders[ip], self.addresses[key] = key, ip

    def release(self, key: str) -> str | None:
        ip = self.addresses.pop(key, None)
        if ip is not None:
            self.holders.pop(ip, None)
        return ip

    def first_free(self) -> str | None:
        reserved = self._reserved()
        for address in self.network:
            if address not in reserved and str(address) not in self.holders:
                return str(address)
        return None

    def rebuild(self, services: list[Obj]) -> None:
        """Take back the addresses services already publish, oldest service first."""
        self.holders.clear()
        self.addresses.clear()
        for service in sorted(services, key=lambda s: (s["metadata"].get("creationTimestamp") or "", _key(s))):
            if not wants_address(service):
                continue
            for ip in ingress_ips(service):
                if self.contains(ip) and ip not in self.holders:
                    self.assign(_key(service), ip)
                    break

    def choose(self, key: str, service: Obj) -> tuple[str | None, str]:
        """The address `key` should have, or None and why not."""
        requested = (service.get("spec") or {}).get("loadBalancerIP")
        if requested:
            if not self.contains(requested):
                return None, f"requested IP {requested} is not in the pool {self.network}"
            holder = self.holders.get(requested)
            if holder not in (None, key):
                return None, f"requested IP {requested} is already allocated to {holder}"
            return requested, ""
        if key in self.addresses:
            return self.addresses[key], ""
        free = self.first_free()
        return (free, "") if free else (None, f"no available IPs in the pool {self.network}")


class LoadBalancerController(Controller):
    name = "loadbalancer"
    workers = 1  # allocation decisions are serial anyway; one worker keeps events in order

    def name_for_events(self) -> str:
        return "service-lb-controller"

    def setup(self) -> None:
        cidr = getattr(self.options, "lb_pool", None) or "198.19.200.0/24"
        self.pool = Pool(cidr)
        self.services = self.informers.informer(SERVICES)
        self.services.add_handlers(self.enqueue_handlers())
        self._written: dict[str, int] = {}  # key -> resourceVersion of our last status write

    async def run(self) -> None:
        services = self.services.list()
        self.pool.rebuild(services)
        for service in services:
            self.enqueue(service)
        await super().run()

    async def sync(self, key: str) -> None:
        service = self.services.get(key)
        if service is not None and _version(service) < self._written.get(key, 0):
            return  # the cache has not seen our last write; its update event brings us back
        if service is None or not wants_address(service):
            await self._release(key, service)
            return
        ip, reason = self.pool.choose(key, service)
        if ip is None:
            self.events.record(service, "Warning", "AllocationFailed", f"Failed to allocate IP for {key}: {reason}")
            await self._release(key, service)
            return
        if self.pool.addresses.get(key) != ip:
            self.pool.assign(key, ip)
            self.events.record(service, "Normal", "IPAllocated", f'Assigned IP ["{ip}"]')
        if ingress_ips(service) != [ip] or _ingress(service) != [{"ip": ip, "ipMode": "VIP"}]:
            self.events.record(service, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
            await self._patch_status(service, {"ingress": [{"ip": ip, "ipMode": "VIP"}]})
            self.events.record(service, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")

    async def _release(self, key: str, service: Obj | None) -> None:
        freed = self.pool.release(key)
        if freed is not None:
            self._retry_pending()
        if service is None:
            self._written.pop(key, None)
            return
        # a LoadBalancer of another class publishes its own status; leave that alone
        ours = wants_address(service) or (service.get("spec") or {}).get("type") != "LoadBalancer"
        if ours and any(self.pool.contains(ip) for ip in ingress_ips(service)):
            await self._patch_status(service, {"ingress": None})
            self.events.record(service, "Normal", "DeletedLoadBalancer", "Deleted load balancer")

    def _retry_pending(self) -> None:
        for service in self.services.list():
            if wants_address(service) and _key(service) not in self.pool.addresses:
                self.enqueue(service)

    async def _patch_status(self, service: Obj, load_balancer: Obj) -> None:
        namespace, name = split_key(_key(service))
        try:
            updated = await self.client.patch(SERVICES, name, {"status": {"loadBalancer": load_balancer}},
                                              namespace, subresource="status")
        except NotFound:
            return
        self._written[_key(service)] = _version(updated)


def _ingress(service: Obj) -> list[Obj]:
    return list(((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])


def _version(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0

"""Service ClusterIP and NodePort allocation.

Every allocated address or port is a key in the store (`/registry/ranges/serviceips/<ip>`,
`/registry/ranges/servicenodeports/<port>`) created with create-if-absent, so two concurrent
creates can never get the same one, and allocations survive restarts. A service's reservations
are derived from its spec, so deleting the service releases exactly what it holds.

Dynamic ClusterIPs come from the upper part of the range, leaving the low addresses (the
`kubernetes` Service's .1, cluster DNS's .10) for static assignment, as upstream does.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from kubelite.api.objectmeta import Obj, meta
from kubelite.api.strategy import Strategy
from kubelite.objects.errors import Cause, invalid
from kubelite.objects.registry import ResourceType
from kubelite.store.interface import KeyExists, KeyNotFound

if TYPE_CHECKING:
    from kubelite.api.storage import ResourceStorage

RANDOM_PROBES = 32  # tries before listing what is taken (a range 97% full still usually succeeds)
IP_PREFIX = "/registry/ranges/serviceips/"
PORT_PREFIX = "/registry/ranges/servicenodeports/"
STATIC_BAND = 16
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


class ServiceStrategy(Strategy):
    def __init__(self, rt: ResourceType, *, service_cidr: str = "198.19.0.0/17",
                 node_port_range: tuple[int, int] = (30000, 32767)) -> None:
        super().__init__(rt)
        self.network = ipaddress.ip_network(service_cidr)
        self.node_ports = node_port_range

    def reservations(self, obj: Obj) -> list[str]:
        spec = obj.get("spec") or {}
        keys = [IP_PREFIX + ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]
                if ip and ip != "None"]
        keys += [f"{PORT_PREFIX}{p['nodePort']}" for p in spec.get("ports") or [] if p.get("nodePort")]
        return keys

    async def allocate(self, storage: ResourceStorage, obj: Obj, *, dry_run: bool,
                       held: frozenset[str] = frozenset()) -> list[str]:
        """Fill in and reserve clusterIP and nodePorts; all or nothing. `held` are the keys the
        object already owns (on update), which count as reserved."""
        taken: list[str] = []
        try:
            await self._allocate_ip(storage, obj, taken, dry_run, held)
            await self._allocate_node_ports(storage, obj, taken, dry_run, held)
        except BaseException:
            await self.release(storage, taken)
            raise
        return taken

    async def release(self, storage: ResourceStorage, reservations: list[str]) -> None:
        for key in reservations:
            with contextlib.suppress(KeyNotFound):
                await storage.store.delete(key)

    async def prepare_update(self, storage: ResourceStorage, obj: Obj, current: Obj, *,
                             subresource: str | None) -> Obj:
        if subresource is None:
            drop_type_dependent_fields(obj.setdefault("spec", {}), current.get("spec") or {})
        obj = await super().prepare_update(storage, obj, current, subresource=subresource)
        if subresource is None:
            spec, old = obj.setdefault("spec", {}), current.get("spec") or {}
            if spec.get("type") != "ExternalName" and not spec.get("clusterIP") and old.get("clusterIP"):
                spec["clusterIP"], spec["clusterIPs"] = old["clusterIP"], old.get("clusterIPs")
            self._keep_node_ports(spec, old)
        return obj

    def _keep_node_ports(self, spec: Obj, old: Obj) -> None:
        """A port the client resent without its nodePort keeps the one it had (as upstream)."""
        if spec.get("type") not in NODE_PORT_TYPES:
            return
        before = {(p.get("port"), p.get("protocol")): p.get("nodePort") for p in old.get("ports") or []}
        for port in spec.get("ports") or []:
            if not port.get("nodePort") and before.get((port.get("port"), port.get("protocol"))):
                port["nodePort"] = before[(port.get("port"), port.get("protocol"))]

    async def _allocate_ip(self, storage: ResourceStorage, obj: Obj, taken: list[str], dry_run: bool,
                           held: frozenset[str]) -> None:
        spec = obj.setdefault("spec", {})
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            return
        requested = spec.get("clusterIP")
        if requested:
            if ipaddress.ip_address(requested) not in self.network:
                raise self._invalid(obj, "spec.clusterIP", requested,
                                    f"provided IP is not in the valid range. The range of valid IPs is "
                                    f"{self.network}")
            if not await self._reserve(storage, IP_PREFIX + requested, taken, dry_run, held):
                raise self._invalid(obj, "spec.clusterIP", requested, "provided IP is already allocated")
            ip = requested
        else:
            ip = await self._pick_ip(storage, taken, dry_run, held)
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]

    async def _pick_ip(self, storage: ResourceStorage, taken: list[str], dry_run: bool,
                       held: frozenset[str]) -> str:
        hosts = self.network.num_addresses - 2
        low = min(STATIC_BAND, hosts // 2)
        base = self.network.network_address + low + 1
        key = await self._pick(storage, IP_PREFIX, hosts - low, lambda i: str(base + i), taken, dry_run, held)
        if key is None:
            raise _full("clusterIP", str(self.network))
        return key.removeprefix(IP_PREFIX)

    async def _allocate_node_ports(self, storage: ResourceStorage, obj: Obj, taken: list[str],
                                   dry_run: bool, held: frozenset[str]) -> None:
        spec = obj.get("spec") or {}
        if spec.get("type") not in NODE_PORT_TYPES:
            return
        for i, port in enumerate(spec.get("ports") or []):
            wanted = port.get("nodePort")
            if wanted:
                low, high = self.node_ports
                if not low <= int(wanted) <= high:
                    raise self._invalid(obj, f"spec.ports[{i}].nodePort", wanted,
                                        f"provided port is not in the valid range. The range of valid "
                                        f"ports is {low}-{high}")
                if not await self._reserve(storage, f"{PORT_PREFIX}{wanted}", taken, dry_run, held):
                    raise self._invalid(obj, f"spec.ports[{i}].nodePort", wanted,
                                        "provided port is already allocated")
            else:
                port["nodePort"] = await self._pick_port(storage, taken, dry_run, held)

    async def _pick_port(self, storage: ResourceStorage, taken: list[str], dry_run: bool,
                         held: frozenset[str]) -> int:
        low, high = self.node_ports
        key = await self._pick(storage, PORT_PREFIX, high - low + 1, lambda i: str(low + i), taken, dry_run, held)
        if key is None:
            raise _full("nodePort", f"{low}-{high}")
        return int(key.removeprefix(PORT_PREFIX))

    async def _pick(self, storage: ResourceStorage, prefix: str, count: int, value: Callable[[int], str],
                    taken: list[str], dry_run: bool, held: frozenset[str]) -> str | None:
        """A free `prefix + value(i)` (0 <= i < count), reserved: random probes first (each one an
        atomic create, so the cost does not grow with the Services there are), then, for a nearly
        full range, one pass over the values the store does not hold."""
        for i in random.sample(range(count), min(RANDOM_PROBES, count)):
            if await self._reserve(storage, prefix + value(i), taken, dry_run, held):
                return prefix + value(i)
        used = {kv.key for kv in (await storage.store.list(prefix)).items} | set(taken)
        free = [prefix + value(i) for i in range(count) if prefix + value(i) not in used]
        random.shuffle(free)
        for key in free:
            if await self._reserve(storage, key, taken, dry_run, held):
                return key
        return None

    async def _reserve(self, storage: ResourceStorage, key: str, taken: list[str], dry_run: bool,
                       held: frozenset[str]) -> bool:
        if key in held:
            return True
        if key in taken:
            return False
        if dry_run:
            return await storage.store.get(key) is None
        try:
            await storage.store.create(key, b"1")
        except KeyExists:
            return False
        taken.append(key)
        return True

    def _invalid(self, obj: Obj, field: str, value: object, why: str) -> Exception:
        cause = Cause("FieldValueInvalid", f"Invalid value: {value!r}: {why}".replace("'", '"'), field)
        return invalid("Service", str(meta(obj).get("name") or ""), [cause])


def drop_type_dependent_fields(spec: Obj, old: Obj) -> None:
    """A type change drops the fields only the old type used, when the client left them as they
    were (upstream's dropTypeDependentFields), so `kubectl patch svc -p '{"spec":{"type":"ClusterIP"}}'`
    on a LoadBalancer Service just works."""
    new_type, old_type = spec.get("type", "ClusterIP"), old.get("type", "ClusterIP")
    if new_type == old_type:
        return
    if new_type not in NODE_PORT_TYPES:
        old_ports = {(p.get("port"), p.get("protocol")): p.get("nodePort") for p in old.get("ports") or []}
        for port in spec.get("ports") or []:
            if port.get("nodePort") and port.get("nodePort") == old_ports.get((port.get("port"), port.get("protocol"))):
                del port["nodePort"]
        _drop_if_unchanged(spec, old, "externalTrafficPolicy", "healthCheckNodePort")
    if new_type != "LoadBalancer":
        _drop_if_unchanged(spec, old, "allocateLoadBalancerNodePorts", "loadBalancerClass", "loadBalancerIP",
                           "loadBalancerSourceRanges")
    if new_type == "ExternalName":
        _drop_if_unchanged(spec, old, "clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy")


def _drop_if_unchanged(spec: Obj, old: Obj, *fields: str) -> None:
    for name in fields:
        if name in spec and spec[name] == old.get(name):
            del spec[name]


def _full(what: str, pool: str) -> Exception:
    from kubelite.objects.errors import InternalError

    return InternalError(f"failed to allocate a {what}: the range {pool} is full")

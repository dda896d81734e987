"""The Service proxy of one node: watches Services, EndpointSlices and its own Node through the API,
and keeps a backend (nftables, else the userspace fallback) in step with them.

Data flow: informer events only mark Services dirty (a slice marks the Service named by its
`kubernetes.io/service-name` label; the Node marks everything, since its addresses and pod CIDR
feed every fragment) and wake the sync loop. The loop waits until all three informers have
listed, then syncs at most once per `min_sync_interval` (coalescing bursts, as upstream's
BoundedFrequencyRunner): it rebuilds the `ServicePort`s of the dirty Services from the caches and
hands the whole map plus the dirty keys to the backend, which recomputes only those Services'
rules. A failed sync keeps everything dirty and is retried after a backoff.

Backend choice (`backend="auto"`): nftables when `nft` is present and may change the ruleset
(probed with `nft -c`), else the userspace proxy, with a warning saying so. On stop, the backend
removes what it installed (the whole nftables table, or every listener).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

from kubelite.client.informer import Handlers, Informer
from kubelite.client.resources import ENDPOINTSLICES, NODES, SERVICES
from kubelite.client.rest import Client
from kubelite.proxy.backends import Backend, NftBackend
from kubelite.proxy.model import NodeContext
from kubelite.proxy.nft import TABLE
from kubelite.proxy.serviceports import ServicePort, node_addresses, proxied, service_key, service_ports
from kubelite.proxy.userspace import UserspaceBackend

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SERVICE_INDEX = "proxy.kubelite.io/service"
RETRY_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)


class Proxier:
    def __init__(self, client: Client, *, node_name: str, node_ips: Iterable[str] = (),
                 backend: str | Backend = "auto", cluster_cidr: str = "", service_cidr: str = "",
                 masquerade_all: bool = False, min_sync_interval: float = 0.1, table: str = TABLE,
                 netns: str | None = None) -> None:
        """`backend`: "auto", "nftables", "userspace" or a Backend instance. `cluster_cidr`: the
        pod addresses (default: this Node's spec.podCIDR); traffic from outside it to a ClusterIP
        is masqueraded. `netns`: run nft inside that network namespace (tests)."""
        self.node_name, self.node_ips = node_name, tuple(node_ips)
        self.cluster_cidr, self.service_cidr, self.masquerade_all = cluster_cidr, service_cidr, masquerade_all
        self.min_sync_interval = min_sync_interval
        self._backend_choice, self._table, self._netns = backend, table, netns
        self.backend: Backend | None = None
        self.services = Informer(client, SERVICES)
        self.slices = Informer(client, ENDPOINTSLICES)
        self.nodes = Informer(client, NODES, field_selector=f"metadata.name={node_name}")
        self.ports: dict[str, list[ServicePort]] = {}
        self.synced = asyncio.Event()  # set after the first successful sync
        self.sync_count = 0
        self.last_sync_seconds = 0.0
        self._dirty: set[str] = set()
        self._all_dirty = True
        self._ctx: NodeContext | None = None  # the context of the last successful sync
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._register()

    # ----- events -------------------------------------------------------------------------------

    def _register(self) -> None:
        self.slices.add_index(SERVICE_INDEX, lambda s: [k] if (k := service_key(s)) else [])
        self.services.add_handlers(Handlers(on_add=self._mark_obj, on_update=self._mark_pair,
                                            on_delete=self._mark_obj))
        self.slices.add_handlers(Handlers(on_add=self._mark_obj, on_update=self._mark_pair,
                                          on_delete=self._mark_obj))
        # the node only matters through context(), compared at each sync: heartbeats cost nothing
        self.nodes.add_handlers(Handlers(on_add=self._wake_up, on_update=lambda _o, n: self._wake_up(n),
                                         on_delete=self._wake_up))

    def _mark_obj(self, obj: Obj) -> None:
        key = service_key(obj)
        if key:
            self._dirty.add(key)
            self._wake.set()

    def _mark_pair(self, old: Obj, new: Obj) -> None:
        self._mark_obj(old)
        self._mark_obj(new)

    def _wake_up(self, _obj: Obj) -> None:
        self._wake.set()

    # ----- lifecycle ------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=f"proxier:{self.node_name}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        """Sync until cancelled; then remove the backend's rules or listeners."""
        self.backend = await self._choose_backend()
        informers = [asyncio.create_task(i.run(), name=f"proxier-informer:{i.rt.group_resource}")
                     for i in (self.services, self.slices, self.nodes)]
        try:
            await asyncio.gather(*(i.wait_synced() for i in (self.services, self.slices, self.nodes)))
            await self._loop(self.backend)
        finally:
            for task in informers:
                task.cancel()
            await asyncio.gather(*informers, return_exceptions=True)
            await self.backend.cleanup()

    async def _choose_backend(self) -> Backend:
        choice = self._backend_choice
        if not isinstance(choice, str):
            return choice
        if choice == "userspace":
            return UserspaceBackend()
        nft = NftBackend(table=self._table, netns=self._netns)
        reason = await nft.available()
        if reason is None:
            log.info("proxy: node %s uses nftables (table ip %s)", self.node_name, self._table)
            return nft
        if choice == "nftables":
            raise RuntimeError(f"nftables unavailable: {reason}")
        log.warning("proxy: nftables unavailable (%s); node %s falls back to the userspace proxy",
                    reason, self.node_name)
        return UserspaceBackend()

    async def _loop(self, backend: Backend) -> None:
        failures, last = 0, float("-inf")
        while True:
            await self._wake.wait()
            wait = last + self.min_sync_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._wake.clear()
            last = time.monotonic()
            if await self.sync_once(backend):
                failures = 0
                continue
            await asyncio.sleep(RETRY_BACKOFF[min(failures, len(RETRY_BACKOFF) - 1)])
            failures += 1
            self._wake.set()

    # ----- one sync --------------------------------------------------------------------------------

    async def sync_once(self, backend: Backend) -> bool:
        """One sync of whatever changed; False when the backend failed (all stays dirty)."""
        ctx = self.context()
        dirty = None if self._all_dirty or ctx != self._ctx else self._dirty
        if dirty is not None and not dirty:
            return True
        self._dirty, self._all_dirty = set(), False
        started = time.perf_counter()
        self._refresh_ports(dirty)
        try:
            await backend.sync(self.ports, ctx=ctx, dirty=dirty)
        except Exception:
            log.exception("proxy: sync on node %s failed; retrying", self.node_name)
            self._all_dirty = True
            return False
        self._ctx = ctx
        self.last_sync_seconds = time.perf_counter() - started
        self.sync_count += 1
        self.synced.set()
        return True

    def _refresh_ports(self, dirty: set[str] | None) -> None:
        if dirty is None:
            self.ports.clear()
            keys: Iterable[str] = [service_key(s) for s in self.services.list()]
        else:
            keys = dirty
        for key in keys:
            service = self.services.get(key)
            ports = service_ports(service, self.slices.by_index(SERVICE_INDEX, key)) \
                if service is not None and proxied(service) else []
            if ports:
                self.ports[key] = ports
            else:
                self.ports.pop(key, None)

    def context(self) -> NodeContext:
        node = self.nodes.get(self.node_name)
        pod_cidr = str(((node or {}).get("spec") or {}).get("podCIDR") or "")
        return NodeContext(node_name=self.node_name, node_ips=node_addresses(node, self.node_ips),
                           cluster_cidr=self.cluster_cidr or pod_cidr, masquerade_all=self.masquerade_all,
                           service_cidr=self.service_cidr)

"""`NodeRoutes`: keeps one network namespace's routes to every node's pod CIDR in step with the
Node objects (the "pod network across nodes" of a node agent, and of the server's host).

Data flow: a Node informer (list + watch through the API, like every component but the API
server) → handlers wake the sync loop only when a Node's routing facts change (podCIDR,
InternalIP, VTEP MAC: status heartbeats cost nothing) → after `min_sync_interval` (coalescing
bursts) one sync: read this namespace's addresses, compute the plan (routes.py / vxlan.py, pure),
make the kernel match (apply.py), log what changed and which nodes are skipped and why (each
once, until the reason changes). A sync also runs every `resync_interval` even without events, so
a route deleted behind our back comes back (logged as a repair). A failed sync is retried with a
backoff.

Modes: "host-gw" (routes via the nodes' InternalIPs; needs a shared link) and "vxlan" (a vxlan
device and flannel-style neighbour/fdb entries; this node publishes its VTEP MAC in its Node's
annotations). `node_name=None` is the host role (no Node of its own): host-gw routes to every
node, whatever `mode` says, since it has no Node to publish a VTEP in.
`stop(cleanup=True)` removes every route of ours and the vxlan device.

One NodeRoutes per network namespace: two would each delete the other's routes as stale (they
share the proto number), so the host role must not run where a node agent's instance runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from kubelite.agent.network.apply import Kernel, NetworkError
from kubelite.agent.network.routes import PROTO, NodeInfo, Plan, RouteChanges, Skip, host_gw_plan, node_info
from kubelite.agent.network.vxlan import VTEP_ANNOTATION, VxlanConfig, device_spec, vxlan_plan
from kubelite.client.informer import Handlers, Informer
from kubelite.client.resources import NODES
from kubelite.client.rest import Client

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MODES = ("host-gw", "vxlan")
RETRY_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)
LOG_NAMES = 5  # node names listed per log line; the rest are counted


class NodeRoutes:
    def __init__(self, client: Client, *, node_name: str | None, mode: str = "host-gw", netns: str | None = None,
                 resync_interval: float = 30.0, min_sync_interval: float = 0.1, proto: int = PROTO,
                 vxlan: VxlanConfig | None = None, informer: Informer | None = None) -> None:
        """`node_name`: this node (None: the host role). `netns`: a named network namespace to
        manage instead of our own. `informer`: a Node informer already run by the caller (else
        we run our own)."""
        if mode not in MODES:
            raise ValueError(f"unknown pod network mode {mode!r}: use one of {', '.join(MODES)}")
        self.client, self.node_name, self.requested_mode = client, node_name, mode
        self.mode = mode if node_name is not None else "host-gw"
        self.resync_interval, self.min_sync_interval = resync_interval, min_sync_interval
        self.vxlan = vxlan or VxlanConfig()
        self.kernel = Kernel(netns=netns, proto=proto, device=self.vxlan.device)
        self.nodes = informer or Informer(client, NODES)
        self._own_informer = informer is None
        self.synced = asyncio.Event()  # set after the first successful sync
        self.sync_count = 0
        self.plan = Plan()
        self._reported: dict[str, str] = {}  # node → skip reason already logged
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.nodes.add_handlers(Handlers(on_add=self._changed, on_update=self._updated, on_delete=self._changed))

    @property
    def where(self) -> str:
        role = f"node {self.node_name}" if self.node_name else "host"
        return role + (f" (netns {self.kernel.netns})" if self.kernel.netns else "")

    # ----- events ---------------------------------------------------------------------------------

    def _info(self, node: Obj) -> NodeInfo:
        return node_info(node, mac_annotation=VTEP_ANNOTATION if self.mode == "vxlan" else "")

    def _changed(self, _node: Obj) -> None:
        self._wake.set()

    def _updated(self, old: Obj, new: Obj) -> None:
        if self._info(old) != self._info(new):
            self._wake.set()

    # ----- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start watching Nodes and syncing; returns at once (`synced` tells the first sync)."""
        if self._tasks:
            return
        if self.requested_mode != self.mode:
            log.info("pod routes: the host role routes host-gw (it has no Node to publish a VTEP in)")
        if self._own_informer:
            self._tasks.append(asyncio.create_task(self.nodes.run(), name="node-routes-informer"))
        self._tasks.append(asyncio.create_task(self._run(), name=f"node-routes:{self.node_name or 'host'}"))
        log.info("pod routes: %s keeps %s routes to pod CIDRs (proto %d)", self.where, self.mode, self.kernel.proto)

    async def stop(self, cleanup: bool = True) -> None:
        """Stop syncing; with `cleanup`, remove our routes and the vxlan device (a failure is
        logged: stopping never raises for it)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not cleanup:
            return
        try:
            changes = await self.kernel.cleanup()
        except NetworkError as exc:
            log.warning("pod routes: %s could not remove its routes: %s", self.where, exc)
            return
        log.info("pod routes: %s removed %d routes%s", self.where, len(changes.remove),
                 f" and the {self.vxlan.device} device" if self.mode == "vxlan" else "")

    async def _run(self) -> None:
        await self.nodes.wait_synced()
        if self.mode == "host-gw" and await self.kernel.delete_device():
            log.info("pod routes: %s removed the %s device of an earlier vxlan mode", self.where, self.vxlan.device)
        failures = 0
        while True:
            self._wake.clear()
            if await self.sync_once():
                failures = 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.resync_interval)
                await asyncio.sleep(self.min_sync_interval)
            else:
                await asyncio.sleep(RETRY_BACKOFF[min(failures, len(RETRY_BACKOFF) - 1)])
                failures += 1

    # ----- one sync -------------------------------------------------------------------------------

    async def sync_once(self) -> bool:
        """Make the kernel match the Node objects now; False when that failed (logged)."""
        try:
            await self._sync()
        except Exception as exc:  # any failure is logged and retried: the loop must live on
            log.warning("pod routes: %s sync failed (%s); retrying", self.where, exc)
            return False
        self.sync_count += 1
        self.synced.set()
        return True

    async def _sync(self) -> None:
        infos = [self._info(n) for n in self.nodes.list()]
        local = await self.kernel.local_addresses()
        if self.mode == "host-gw":
            plan = host_gw_plan(infos, self_name=self.node_name, local=local)
        else:
            plan = await self._sync_vxlan(infos, local)
        changes = await self.kernel.apply_routes(plan.routes)
        # the same plan as last time yet the kernel differed: someone removed or changed our routes
        repaired = self.sync_count > 0 and plan.routes == self.plan.routes
        self.plan = plan
        self._log_routes(changes, verb="repaired" if repaired else "changed")
        self._log_skipped(plan.skipped)

    async def _sync_vxlan(self, infos: list[NodeInfo], local: Sequence[Any]) -> Plan:
        assert self.node_name is not None
        own = next((i for i in infos if i.name == self.node_name), None)
        spec = device_spec(own, self.vxlan)
        if isinstance(spec, str):  # no device, so no route through it either
            return Plan(skipped=(Skip(self.node_name, f"no vxlan device yet: {spec}"),))
        await self._publish_mac(own, spec.mac)
        plan = vxlan_plan(infos, self_name=self.node_name, config=self.vxlan, local=local)
        changes = await self.kernel.apply_vxlan(spec, neighbours=plan.neighbours, fdb=plan.fdb)
        if changes.device:
            log.info("pod routes: %s vxlan device %s set up: %s", self.where, spec.name, "; ".join(changes.device))
        if changes.neighbours or changes.fdb:
            log.info("pod routes: %s vxlan neighbour/fdb changes: %s", self.where,
                     "; ".join((*changes.neighbours, *changes.fdb)))
        return Plan(routes=plan.routes, skipped=plan.skipped)

    async def _publish_mac(self, own: NodeInfo | None, mac: str) -> None:
        if own is None or own.vtep_mac == mac:
            return
        await self.client.patch(NODES, own.name, {"metadata": {"annotations": {VTEP_ANNOTATION: mac}}})
        log.info("pod routes: node %s publishes VTEP MAC %s (annotation %s)", own.name, mac, VTEP_ANNOTATION)

    # ----- logging --------------------------------------------------------------------------------

    def _log_routes(self, changes: RouteChanges, *, verb: str) -> None:
        if not changes:
            return
        added = [f"{r} (node {r.node})" for r in changes.add]
        removed = [str(r) for r in changes.remove]
        log.info("pod routes: %s %s routes: +%d %s -%d %s", self.where, verb, len(added), _some(added),
                 len(removed), _some(removed))

    def _log_skipped(self, skipped: Sequence[Skip]) -> None:
        """Each skipped node once, until its reason changes (hollow nodes would flood the log)."""
        current = {s.node: s.reason for s in skipped}
        fresh = [f"{node}: {reason}" for node, reason in sorted(current.items()) if self._reported.get(node) != reason]
        self._reported = current
        if fresh:
            log.info("pod routes: %s skips %d node(s): %s", self.where, len(fresh), _some(fresh))


def _some(items: Sequence[str]) -> str:
    shown = ", ".join(items[:LOG_NAMES])
    return shown + (f" and {len(items) - LOG_NAMES} more" if len(items) > LOG_NAMES else "")

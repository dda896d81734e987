"""One node's kubelet: registers its Node, keeps its Lease and status fresh, runs its pods.

Data flow: `register` creates the Node with its status filled in (or adopts an existing one) and
its Lease in kube-node-lease. A driver (`KubeletHost`) then calls `heartbeat` every renew interval:
the Lease is renewed with an update carrying the last resourceVersion (one request, as upstream's
lease controller), and the node status is posted, as a strategic merge patch on nodes/status, when
it changed or `status_report_frequency` has passed. Node and pod events from the host's shared
informers arrive through `node_changed` / `pod_changed` / `pod_deleted`; the node's podCIDR goes
to the runtime, pods to their workers (`kubelite.agent.pods`).

A kubelet never reads the API on its own schedule except for its Lease and Node after a conflict;
everything else comes from the host's watches, so thousands of kubelets share two watches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubelite.agent import nodestatus
from kubelite.agent.clock import now_micro, now_rfc3339
from kubelite.agent.config import KubeletConfig, NodeConfig
from kubelite.agent.pods import PodManager
from kubelite.agent.runtime.interface import ContainerRuntime
from kubelite.client import Client
from kubelite.client.events import EventRecorder
from kubelite.client.resources import LEASES, NODES
from kubelite.images.api import ImageStoreAPI
from kubelite.objects.errors import AlreadyExists, Conflict, NotFound

if TYPE_CHECKING:
    from kubelite.agent.server.app import StreamingServer

log = logging.getLogger(__name__)

Obj = dict[str, Any]
LEASE_NAMESPACE = "kube-node-lease"


def _rv(obj: Obj | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


@dataclass(frozen=True)
class AgentClients:
    """A kubelet's connections. As upstream's kubelet keeps its heartbeats on a client of their
    own, leases and node status go through `heartbeat` and Events through a small `events` pool,
    so neither a flood of events nor busy pod work can delay a lease renewal past its expiry."""

    api: Client
    heartbeat: Client
    events: Client

    @classmethod
    def alongside(cls, client: Client, *, heartbeat_connections: int = 32,
                  event_connections: int = 4) -> AgentClients:
        """`client` for pods, plus new heartbeat and event clients to the same API."""
        def more(limit: int) -> Client:
            return Client(client.connection, user_agent=client.user_agent, max_connections=limit)
        return cls(client, more(heartbeat_connections), more(event_connections))

    async def close_extra(self) -> None:
        """Close the clients `alongside` made (the api client is its creator's to close)."""
        for extra in {id(c): c for c in (self.heartbeat, self.events) if c is not self.api}.values():
            await extra.close()


class Kubelet:
    streaming: StreamingServer | None = None  # set before register(): serves logs/exec/attach/port-forward

    def __init__(self, clients: AgentClients | Client, node: NodeConfig, runtime: ContainerRuntime, *,
                 config: KubeletConfig | None = None, images: ImageStoreAPI | None = None) -> None:
        if isinstance(clients, Client):
            clients = AgentClients(clients, clients, clients)
        self.client, self.heartbeat_client = clients.api, clients.heartbeat
        self.config, self.runtime = config or KubeletConfig(), runtime
        # the image store imagePullPolicy is checked against (None: every image counts as present)
        self.images: ImageStoreAPI | None = images if images is not None else getattr(runtime, "images", None)
        self.node_config = node
        self.name = node.name
        self.node: Obj | None = None
        self.lease: Obj | None = None
        self.registered = asyncio.Event()
        self.stopped = False
        self._last_report = 0.0
        self._dirty = False
        self._readiness = self.readiness()
        self._report_task: asyncio.Task[None] | None = None
        self._rotate_task: asyncio.Task[None] | None = None
        self.events = EventRecorder(clients.events, component="kubelet", host=self.name) \
            if self.config.record_events else None
        self.pods = PodManager(self)
        if getattr(runtime, "on_container_exit", None) is None:
            runtime.on_container_exit = self.pods.container_exited

    # ----- identity and status -------------------------------------------------------------------

    @property
    def node_ref(self) -> Obj:
        # upstream's kubelet refers to its node with the node name as UID
        return {"kind": "Node", "apiVersion": "v1", "metadata": {"name": self.name, "uid": self.name}}

    @property
    def pod_cidr(self) -> str:
        return str(((self.node or {}).get("spec") or {}).get("podCIDR") or "")

    def readiness(self) -> nodestatus.Readiness:
        runtime_ready, network_ready, message = self.runtime.readiness()
        return nodestatus.Readiness(runtime_ready, network_ready, message)

    def record(self, obj: Obj, event_type: str, reason: str, message: str) -> None:
        if self.events is not None and not self.stopped:
            self.events.record(obj, event_type, reason, message)

    def _desired_status(self) -> Obj:
        current = (self.node or {}).get("status")
        return nodestatus.node_status(self.node_config, str(self.runtime.version()), self._readiness,
                                      current=current, now=now_rfc3339())

    # ----- registration ----------------------------------------------------------------------------

    async def register(self) -> None:
        """Create the Node (or adopt the one left by a previous run) and the Lease."""
        self.record(self.node_ref, "Normal", "Starting", "Starting kubelet.")
        if self.streaming is not None:  # listens, and sets node_config.kubelet_port to the port bound
            await self.streaming.start(self)
        node = nodestatus.node_object(self.node_config, str(self.runtime.version()), self._readiness,
                                      now=now_rfc3339())
        try:
            self._set_node(await self.client.create(NODES, node))
            self._last_report = time.monotonic()
        except AlreadyExists:
            self._set_node(await self.client.get(NODES, self.name))
            await self.report_status(force=True)
        await self.renew_lease()
        # the host delivers this node's pods before registering it: what else the runtime holds is gone
        await self.pods.cleanup_orphans()
        self._start_log_rotation()
        self.registered.set()
        self.pods.resync_waiting()  # pods that arrived before the Node was read
        if self._readiness.ready:
            self.record(self.node_ref, "Normal", "NodeReady", f"Node {self.name} status is now: NodeReady")

    def _start_log_rotation(self) -> None:
        from kubelite.agent.logrotate import LogRotator

        rotator = LogRotator(self.runtime)
        if rotator.enabled() and self._rotate_task is None:  # runtimes with log files (not hollow ones)
            self._rotate_task = asyncio.get_running_loop().create_task(rotator.run(),
                                                                       name=f"logrotate:{self.name}")

    def _set_node(self, node: Obj) -> None:
        if _rv(node) < _rv(self.node):
            return  # an older copy than the one we hold (a watch event overtaken by our own write)
        self.node = node
        self.runtime.update_pod_cidr(self.pod_cidr)

    # ----- heartbeats ------------------------------------------------------------------------------

    async def heartbeat(self) -> None:
        """Renew the Lease; post node status if it changed or the report frequency has passed."""
        if self.stopped:
            return
        readiness = self.readiness()
        if readiness != self._readiness:
            self._readiness, self._dirty = readiness, True
        await self.renew_lease()
        due = time.monotonic() - self._last_report >= self.config.status_report_frequency
        if due or self._dirty:
            await self.report_status(force=due)

    async def renew_lease(self) -> None:
        try:
            await self._update_lease()
        except Conflict:
            self.lease = await self.heartbeat_client.get(LEASES, self.name, LEASE_NAMESPACE)
            await self._update_lease()
        except NotFound:
            self.lease = None
            await self._update_lease()

    async def _update_lease(self) -> None:
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": self.config.lease_duration,
                "renewTime": now_micro()}
        if self.lease is None:
            lease: Obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                          "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE,
                                       "ownerReferences": self._owner_refs()},
                          "spec": spec}
            try:
                self.lease = await self.heartbeat_client.create(LEASES, lease, LEASE_NAMESPACE)
                return
            except AlreadyExists:
                self.lease = await self.heartbeat_client.get(LEASES, self.name, LEASE_NAMESPACE)
        assert self.lease is not None
        lease = {**self.lease, "spec": {**(self.lease.get("spec") or {}), **spec}}
        self.lease = await self.heartbeat_client.update(LEASES, lease)

    def _owner_refs(self) -> list[Obj]:
        uid = ((self.node or {}).get("metadata") or {}).get("uid")
        return [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": uid}] if uid else []

    async def report_status(self, *, force: bool = False) -> None:
        desired = self._desired_status()
        if not force and not nodestatus.status_changed(desired, (self.node or {}).get("status")):
            self._dirty = False
            return
        patched = await self.heartbeat_client.patch(NODES, self.name, nodestatus.status_patch(desired),
                                          patch_type="strategic", subresource="status")
        self._set_node(patched)
        self._last_report, self._dirty = time.monotonic(), False

    def _report_soon(self) -> None:
        if self._report_task is None or self._report_task.done():
            self._report_task = asyncio.get_running_loop().create_task(self._report_now(),
                                                                      name=f"status:{self.name}")

    async def _report_now(self) -> None:
        try:
            await self.report_status()
        except Exception as exc:  # the next heartbeat tries again
            self._dirty = True
            log.debug("kubelet %s: posting node status failed: %s", self.name, exc)

    # ----- events from the host's informers ---------------------------------------------------------

    def node_changed(self, node: Obj) -> None:
        if self.stopped:
            return
        had_cidr = self.pod_cidr
        self._set_node(node)
        if self.pod_cidr and not had_cidr:
            self.pods.resync_waiting()
        if self.registered.is_set() and nodestatus.status_changed(self._desired_status(), node.get("status")):
            self._report_soon()  # someone else changed our conditions (the node controller, say)

    def pod_changed(self, pod: Obj) -> None:
        if not self.stopped:
            self.pods.update(pod)

    def pod_deleted(self, pod: Obj) -> None:
        if not self.stopped:
            self.pods.update(pod, deleted=True)

    async def stop(self) -> None:
        """Stop heartbeats and pod work; containers and API objects stay (a crashed kubelet)."""
        self.stopped = True
        if self._report_task is not None:
            self._report_task.cancel()
        if self._rotate_task is not None:
            self._rotate_task.cancel()
        await self.pods.stop()
        if self.streaming is not None:
            await self.streaming.stop()
        if self.events is not None:
            self.events.close()

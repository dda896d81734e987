"""The node lifecycle controller: notices nodes whose kubelet went silent, taints them, and evicts
the pods that do not tolerate it (upstream's node lifecycle and taint eviction controllers).

Three kinds of keys share the work queue:
- `monitor` (every `monitor_period`): the health pass over all cached nodes. A node whose Lease
  and Ready heartbeat have not moved for `node_monitor_grace_period` gets its Ready,
  MemoryPressure, DiskPressure and PIDPressure conditions set Unknown (reason NodeStatusUnknown);
  a node leaving Ready has its pods marked Ready=False; NoExecute taints follow Ready
  (not-ready for False, unreachable for Unknown, none for True), added at most `EVICTION_QPS` per
  zone and never while every zone is down.
- `node:<name>` (node events): the NoSchedule taints its conditions call for (TaintNodesByCondition),
  then its pods are queued for the eviction check when it has, or just lost, NoExecute taints.
- `pod:<ns>/<name>` (pod events): taint eviction. A pod that does not tolerate all of its node's
  NoExecute taints is deleted at once; one that tolerates them for tolerationSeconds is deleted that
  long after the taint was added (the key comes back when that is due), with a DisruptionTarget
  condition and a TaintManagerEviction event.

Writes go through the API with the cached resourceVersion (a conflict retries on fresh data); an
eviction is remembered by pod UID until the cache shows its deletionTimestamp, so a stale cache
never deletes a pod twice.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from kubelite.client.events import EventRecorder
from kubelite.client.resources import LEASES, NODES, PODS
from kubelite.controllers.base import Controller, Obj
from kubelite.controllers.nodelifecycle import health as hl
from kubelite.controllers.nodelifecycle import taints as tt
from kubelite.objects.errors import Conflict, NotFound

MONITOR = "monitor"
LEASE_NAMESPACE = "kube-node-lease"
NODE_INDEX = "nodelifecycle:nodeName"
STARTUP_GRACE = 60.0
WRITE_CONCURRENCY = 8


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _tainted_since(node_taints: list[Obj], now: float) -> float:
    """When the eviction countdown began: the earliest timeAdded of the NoExecute taints. That has
    whole seconds, so the second is rounded up (never early), but not past now."""
    added = [t for t in (_parse(x.get("timeAdded")) for x in node_taints if x.get("timeAdded")) if t is not None]
    return min(min(added, default=now) + 1.0, now)


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


class NodeLifecycleController(Controller):
    name = "nodelifecycle"
    workers = 4

    def name_for_events(self) -> str:
        return "node-controller"

    def setup(self) -> None:
        self.grace = float(getattr(self.options, "node_monitor_grace_period", 40.0))
        self.monitor_period = min(5.0, max(0.5, self.grace / 8))
        self.nodes = self.informers.informer(NODES)
        self.leases = self.informers.informer(LEASES)
        self.pods = self.informers.informer(PODS)
        self.pods.add_index(NODE_INDEX, lambda p: [n] if (n := (p.get("spec") or {}).get("nodeName")) else [])
        self.nodes.add_handlers(self.enqueue_handlers(lambda n: f"node:{_name(n)}"))
        self.pods.add_handlers(self.enqueue_handlers(
            lambda p: f"pod:{p['metadata']['namespace']}/{_name(p)}" if (p.get("spec") or {}).get("nodeName") else None))
        self.eviction_events = EventRecorder(self.client, component="taint-eviction-controller")
        self.health: dict[str, hl.Health] = {}
        self.observed_ready: dict[str, str] = {}  # node -> Ready status at the end of the last pass
        self.known: dict[str, str] = {}  # node -> uid, for RegisteredNode / RemovingNode events
        self.buckets: dict[str, hl.TokenBucket] = {}
        self.mark_pending: set[str] = set()  # nodes whose pods still need marking NotReady
        self.tainted: set[str] = set()  # nodes that had NoExecute taints at their last sync
        self.first_tainted: dict[str, float] = {}  # pod key -> when its eviction countdown began
        self.evicted: dict[str, str] = {}  # pod key -> uid we deleted, until the cache shows it
        self._limit = asyncio.Semaphore(WRITE_CONCURRENCY)

    async def run(self) -> None:
        self.queue.add(MONITOR)
        await super().run()

    def stop(self) -> None:
        super().stop()
        self.eviction_events.close()

    async def sync(self, key: str) -> None:
        kind, _, rest = key.partition(":")
        if key == MONITOR:
            try:
                await self.monitor()
            finally:
                self.queue.add_after(MONITOR, self.monitor_period)
        elif kind == "node":
            await self.sync_node(rest)
        elif kind == "pod":
            await self.sync_pod(rest)

    # ----- the health pass -------------------------------------------------------------------------

    async def monitor(self) -> None:
        now = time.monotonic()
        nodes = self.nodes.list()
        self._note_membership(nodes)
        latest: dict[str, Obj] = {_name(n): n for n in nodes}  # with our own status writes applied
        await self._gather(self._check_health(node, now, latest) for node in nodes)
        ready = {name: self.observed_ready.get(name, "Unknown") for name in latest}
        await self._gather(self._mark_pods(name) for name in sorted(self.mark_pending))
        states = hl.zone_states(nodes, ready)
        all_disrupted = bool(states) and all(state == hl.FULL for state, _ in states.values())
        for zone, (state, size) in states.items():
            self._bucket(zone).rate = hl.zone_rate(state, size)
        await self._gather(self._no_execute(node, ready[name], now, all_disrupted=all_disrupted)
                           for name, node in latest.items())

    def _bucket(self, zone: str) -> hl.TokenBucket:
        return self.buckets.setdefault(zone, hl.TokenBucket(hl.EVICTION_QPS))

    def _note_membership(self, nodes: list[Obj]) -> None:
        names = {_name(n): n for n in nodes}
        for name, node in names.items():
            if name not in self.known:
                self.known[name] = str(node["metadata"].get("uid") or "")
                self._node_event(node, "RegisteredNode", f"Registered Node {name} in Controller")
        for name in [n for n in self.known if n not in names]:
            ref = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": name, "uid": self.known.pop(name)}}
            self._node_event(ref, "RemovingNode", f"Removing Node {name} from Controller")
            for table in (self.health, self.observed_ready):
                table.pop(name, None)
            self.mark_pending.discard(name)

    def _node_event(self, node: Obj, reason: str, message: str) -> None:
        self.events.record({**node, "kind": "Node", "apiVersion": "v1"}, "Normal", reason,
                           f"Node {_name(node)} event: {message}")

    async def _check_health(self, node: Obj, now: float, latest: dict[str, Obj]) -> None:
        name = _name(node)
        lease = self.leases.get(f"{LEASE_NAMESPACE}/{name}")
        health = self.health[name] = hl.observe(self.health.get(name), node, lease, now)
        before = self.observed_ready.get(name, "True")
        if hl.silent(health, node, now, grace=self.grace, startup_grace=STARTUP_GRACE):
            conditions = hl.unknown_conditions(node, _now())
            if conditions is not None:
                status = {**(node.get("status") or {}), "conditions": conditions}
                node = latest[name] = await self.client.update(NODES, {**node, "status": status},
                                                               subresource="status")
        after = self.observed_ready[name] = tt.ready_status(node)
        if before == "True" and after != "True":
            self.events.record({**node, "kind": "Node", "apiVersion": "v1"}, "Normal", "NodeNotReady",
                               f"Node {name} status is now: NodeNotReady")
            self.mark_pending.add(name)
        elif after == "True":
            self.mark_pending.discard(name)

    async def _mark_pods(self, node_name: str) -> None:
        for pod in self.pods.by_index(NODE_INDEX, node_name):
            await self._mark_pod_not_ready(pod)
        self.mark_pending.discard(node_name)

    async def _mark_pod_not_ready(self, pod: Obj) -> None:
        ready = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") == "False":
            return
        meta = pod["metadata"]
        patch = {"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": _now()}]}}
        try:
            await self.client.patch(PODS, meta["name"], patch, meta["namespace"], patch_type="strategic",
                                    subresource="status")
        except NotFound:
            return
        self.events.record(pod, "Warning", "NodeNotReady", "Node is not ready")

    async def _no_execute(self, node: Obj, ready: str, now: float, *, all_disrupted: bool) -> None:
        action = hl.no_execute_action(node, ready, all_disrupted=all_disrupted)
        if not action.add and not action.remove:
            return
        bucket = self._bucket(hl.zone_of(node))
        if action.rate_limited and not bucket.take(now):
            return  # the next pass tries again
        try:
            await self._set_taints(node, add=[(k, tt.NO_EXECUTE) for k in action.add],
                                   remove=[(k, tt.NO_EXECUTE) for k in action.remove])
        except BaseException:
            if action.rate_limited:
                bucket.refund()
            raise

    async def _set_taints(self, node: Obj, *, add: list[tuple[str, str]], remove: list[tuple[str, str]]) -> None:
        updated = {**node, "spec": {**(node.get("spec") or {}), "taints": tt.with_taints(node, add=add, remove=remove,
                                                                                        now=_now())}}
        await self.client.update(NODES, updated)

    async def _gather(self, jobs: Any) -> None:
        async def limited(job: Any) -> None:
            async with self._limit:
                try:
                    await job
                except NotFound:
                    pass
                except Conflict as exc:  # raced with the kubelet or our own node worker: next pass
                    self.log.debug("node lifecycle write conflicted: %s", exc)
                except Exception as exc:
                    self.log.warning("node lifecycle write failed (retrying next pass): %s", exc)

        await asyncio.gather(*(limited(job) for job in jobs))

    # ----- per node: NoSchedule taints -------------------------------------------------------------

    async def sync_node(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            self._queue_pods(name)
            self.tainted.discard(name)
            return
        add, remove = tt.no_schedule_diff(node)
        if add or remove:
            await self._set_taints(node, add=[(k, tt.NO_SCHEDULE) for k in sorted(add)],
                                   remove=[(k, tt.NO_SCHEDULE) for k in remove])
        if tt.no_execute(node) or name in self.tainted:
            self._queue_pods(name)
        if tt.no_execute(node):
            self.tainted.add(name)
        else:
            self.tainted.discard(name)

    def _queue_pods(self, node_name: str) -> None:
        for pod in self.pods.by_index(NODE_INDEX, node_name):
            self.queue.add(f"pod:{pod['metadata']['namespace']}/{_name(pod)}")

    # ----- per pod: taint eviction -----------------------------------------------------------------

    async def sync_pod(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            self._forget_pod(key)
            return
        if self.evicted.get(key) == pod["metadata"].get("uid"):
            return  # deleted by us; the cache has not caught up yet
        self.evicted.pop(key, None)
        node = self.nodes.get(str((pod.get("spec") or {}).get("nodeName") or ""))
        if node is None:
            return
        node_taints = tt.no_execute(node)
        delay = tt.eviction_delay(pod, node_taints)
        if delay is None:
            self.first_tainted.pop(key, None)
            return
        wall = time.time()
        due = self.first_tainted.setdefault(key, _tainted_since(node_taints, wall)) + delay
        if due > wall:
            self.queue.add_after(f"pod:{key}", due - wall)
            return
        await self._evict(pod, key)

    def _forget_pod(self, key: str) -> None:
        self.first_tainted.pop(key, None)
        self.evicted.pop(key, None)

    async def _evict(self, pod: Obj, key: str) -> None:
        meta = pod["metadata"]
        self.eviction_events.record(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}")
        condition = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                     "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": _now()}
        try:
            await self.client.patch(PODS, meta["name"], {"status": {"conditions": [condition]}}, meta["namespace"],
                                    patch_type="strategic", subresource="status")
            await self.client.delete(PODS, meta["name"], meta["namespace"], preconditions={"uid": meta["uid"]})
        except NotFound:
            return
        self.evicted[key] = str(meta.get("uid"))
        self.first_tainted.pop(key, None)

"""kube-scheduler: place pending pods on nodes, one decision at a time, bindings in parallel.

Data flow: the node informer and the pod informer (non-terminal pods) feed the cache (nodes and
placed pods) and the scheduling queue (pending pods whose schedulerName is default-scheduler).
The loop pops a pod, decides synchronously (`Algorithm.schedule` reads only the cache), assumes
the pod onto the chosen node in the cache, and starts the binding as its own task
(POST pods/<name>/binding); the next decision starts at once and already sees the assumed pod.
The binding's watch event later confirms the assumption; a failed binding forgets it and the
pod is retried after backoff.

A pod no node fits goes back to the queue as unschedulable, gets a FailedScheduling event with
upstream's message and its PodScheduled condition set to False/Unschedulable (a strategic merge
patch of pods/status, skipped when the condition already says the same).

Every `run()` (each time this process becomes the leader) starts from a fresh cache and queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubelite.client import Client, Handlers, Informer
from kubelite.client.events import EventRecorder
from kubelite.client.resources import NODES, PODS
from kubelite.objects.errors import Conflict, NotFound
from kubelite.scheduler import clusterevents
from kubelite.scheduler.algorithm import Algorithm
from kubelite.scheduler.cache import Cache
from kubelite.scheduler.framework import Profile
from kubelite.scheduler.messages import failed_scheduling_message, truncate
from kubelite.scheduler.plugins import default_profile
from kubelite.scheduler.podinfo import DEFAULT_SCHEDULER, Obj, PodInfo, pod_key, responsible_for
from kubelite.scheduler.queue import QueuedPod, SchedulingQueue

log = logging.getLogger(__name__)

NON_TERMINAL = "status.phase!=Succeeded,status.phase!=Failed"
MAX_API_CALLS_IN_FLIGHT = 64


@dataclass
class Stats:
    attempts: int = 0
    scheduled: int = 0
    unschedulable: int = 0
    bound: int = 0
    bind_errors: int = 0
    decision_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_condition(pod: Obj, reason: str, message: str) -> Obj | None:
    """The PodScheduled=False condition to write, or None when the pod already carries it."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled":
            if (condition.get("status"), condition.get("reason"), condition.get("message")) == \
                    ("False", reason, message):
                return None
            since = condition.get("lastTransitionTime") if condition.get("status") == "False" else None
            break
    else:
        since = None
    return {"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
            "lastProbeTime": None, "lastTransitionTime": since or _now()}


class Scheduler:
    def __init__(self, client: Client, *, options: Any = None, profile: Profile | None = None,
                 percentage_of_nodes_to_score: int = 0, rng: random.Random | None = None) -> None:
        self.client = client
        self.options = options
        self.profile = profile or default_profile()
        self.percentage = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self.stats = Stats()
        self._reset()

    def _reset(self) -> None:
        self.cache = Cache()
        self.queue = SchedulingQueue()
        self.algorithm = Algorithm(self.cache, self.profile, percentage_of_nodes_to_score=self.percentage,
                                   rng=self.rng)
        self.events = EventRecorder(self.client, component=DEFAULT_SCHEDULER)
        self.node_informer = Informer(self.client, NODES)
        self.pod_informer = Informer(self.client, PODS, field_selector=NON_TERMINAL)
        self.node_informer.add_handlers(Handlers(self._node_added, self._node_updated, self._node_deleted))
        self.pod_informer.add_handlers(Handlers(self._pod_added, self._pod_updated, self._pod_deleted))
        self._tasks: set[asyncio.Task[None]] = set()
        self._api_slots = asyncio.Semaphore(MAX_API_CALLS_IN_FLIGHT)

    async def run(self) -> None:
        self._reset()  # each leadership term starts over from what the API says
        informers = [asyncio.create_task(self.node_informer.run(), name="scheduler:nodes"),
                     asyncio.create_task(self.pod_informer.run(), name="scheduler:pods")]
        try:
            await self.node_informer.wait_synced()
            await self.pod_informer.wait_synced()
            log.info("scheduler running: %d nodes, %d pending pods", len(self.cache.order), len(self.queue))
            while True:
                qp = await self.queue.pop()
                self.schedule_one(qp)
                await asyncio.sleep(0)  # let informers and bindings run between decisions
        finally:
            for task in [*informers, *self._tasks]:
                task.cancel()
            for task in [*informers, *self._tasks]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.events.close()

    # ----- one decision --------------------------------------------------------------------------

    def schedule_one(self, qp: QueuedPod) -> None:
        if (qp.pod.get("metadata") or {}).get("deletionTimestamp") or not responsible_for(qp.pod):
            self.queue.delete(qp.key)
            return
        info = qp.info
        started = time.perf_counter()
        decision = self.algorithm.schedule(info)
        if decision.node is not None:
            self.cache.assume(info, decision.node)
        self.stats.decision_seconds.append(time.perf_counter() - started)
        self.stats.attempts += 1
        if decision.node is not None:
            self.stats.scheduled += 1
            self._spawn(self._bind(qp, info, decision.node))
            return
        self.stats.unschedulable += 1
        message = failed_scheduling_message(info, decision.statuses, self.cache.nodes,
                                            self.profile.filters_for(info), decision.num_nodes)
        self.queue.requeue_unschedulable(qp, decision.rejecting_plugins)
        self._report_failure(qp.pod, "Unschedulable", message)

    async def _bind(self, qp: QueuedPod, info: PodInfo, node: str) -> None:
        meta = qp.pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"]},
                   "target": {"kind": "Node", "name": node}}
        try:
            async with self._api_slots:
                await self.client.create(PODS, binding, meta.get("namespace"), name=meta["name"],
                                         subresource="binding")
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            self._binding_failed(qp, exc)
            return
        self.stats.bound += 1
        self.events.record(qp.pod, "Normal", "Scheduled",
                           f"Successfully assigned {meta.get('namespace')}/{meta['name']} to {node}")

    def _binding_failed(self, qp: QueuedPod, exc: Exception) -> None:
        self.stats.bind_errors += 1
        self.cache.forget(qp.key)
        self.queue.move(clusterevents.ASSIGNED_POD_DELETED)  # what it held is free again
        if isinstance(exc, NotFound | Conflict):
            log.debug("binding %s: %s; dropping it", qp.key, exc)  # deleted, or bound by someone else
            self.queue.delete(qp.key)
            return
        log.warning("binding %s failed: %s", qp.key, exc)
        self.queue.requeue_backoff(qp)
        self._report_failure(qp.pod, "SchedulerError", f'running Bind plugin "DefaultBinder": {exc}')

    def _report_failure(self, pod: Obj, reason: str, message: str) -> None:
        self.events.record(pod, "Warning", "FailedScheduling", truncate(message))
        condition = scheduled_condition(pod, reason, message)
        if condition is not None:
            self._spawn(self._patch_condition(pod, condition))

    async def _patch_condition(self, pod: Obj, condition: Obj) -> None:
        meta = pod["metadata"]
        patch = {"status": {"conditions": [condition]}}
        try:
            async with self._api_slots:
                await self.client.patch(PODS, meta["name"], patch, meta.get("namespace"),
                                        patch_type="strategic", subresource="status")
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # the next attempt writes it again
            log.debug("updating PodScheduled of %s: %s", pod_key(pod), exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----- informer handlers (quick, never block) ------------------------------------------------

    def _node_added(self, node: Obj) -> None:
        self.cache.set_node(node)
        self.queue.move(clusterevents.ANY)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self.cache.set_node(new)
        plugins = clusterevents.node_update_plugins(old, new)
        if plugins:
            self.queue.move(plugins)

    def _node_deleted(self, node: Obj) -> None:
        self.cache.remove_node(str(node["metadata"]["name"]))

    def _pod_added(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            self.cache.set_pod(pod)
        elif responsible_for(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.queue.add(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = pod_key(new)
        if (new.get("spec") or {}).get("nodeName"):
            self.cache.set_pod(new)
            self.queue.delete(key)
        elif not responsible_for(new) or (new.get("metadata") or {}).get("deletionTimestamp"):
            self.queue.delete(key)
        elif not self.cache.is_assumed(key):
            self.queue.update(old, new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = pod_key(pod)
        self.queue.delete(key)
        if self.cache.remove_pod(key) is not None:
            self.queue.move(clusterevents.ASSIGNED_POD_DELETED)

"""Runs many kubelets in one process on one Client: two shared watches, one heartbeat wheel.

- Pods: a single informer (all bound pods for hollow nodes, `spec.nodeName=<name>` for a lone
  agent) whose events are dispatched by `spec.nodeName` to the kubelet of that node.
- Nodes: a single informer, dispatched by name (podCIDR and status drift reach the kubelet).
- Heartbeats: the kubelets are spread over `renew_interval` in slots; each tick renews one slot's
  leases concurrently, so 5,000 nodes make a steady 500 lease updates a second instead of bursts.

A kubelet taken out with `stop_node` simply goes quiet (no heartbeats, no pod work), as a node
whose kubelet died: its Node, Lease and pods stay for the node lifecycle controller to notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from kubelite.agent.config import KubeletConfig
from kubelite.agent.kubelet import Kubelet
from kubelite.client import Client, Handlers, Informer
from kubelite.client.resources import NODES, PODS

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MAX_SLOTS = 100


def _node_name(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


class HeartbeatWheel:
    """Calls `heartbeat()` of every member once per `period`, spread evenly over the period.

    A tick never waits for the previous one: heartbeats run as tasks (at most `concurrency` at a
    time), so a slow API delays only the renewals it is slow with, and a kubelet whose previous
    heartbeat is still under way skips this one instead of queueing a second.
    """

    def __init__(self, period: float, *, slots: int, concurrency: int = 64) -> None:
        self.period = period
        self.slots: list[list[Kubelet]] = [[] for _ in range(max(1, slots))]
        self._next = 0
        self._limit = asyncio.Semaphore(concurrency)
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.beats = 0
        self.skipped = 0
        self.failures = 0

    def add(self, kubelet: Kubelet) -> None:
        self.slots[self._next % len(self.slots)].append(kubelet)
        self._next += 1

    def remove(self, kubelet: Kubelet) -> None:
        for slot in self.slots:
            if kubelet in slot:
                slot.remove(kubelet)

    async def run(self) -> None:
        tick = self.period / len(self.slots)
        start, index = time.monotonic(), 0
        try:
            while True:
                index += 1
                await asyncio.sleep(max(0.0, start + index * tick - time.monotonic()))
                for kubelet in self.slots[index % len(self.slots)]:
                    if kubelet.name in self._busy:
                        self.skipped += 1
                        continue
                    self._busy.add(kubelet.name)
                    task = asyncio.create_task(self._beat(kubelet), name=f"heartbeat:{kubelet.name}")
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _beat(self, kubelet: Kubelet) -> None:
        try:
            async with self._limit:
                await kubelet.heartbeat()
            self.beats += 1
        except Exception as exc:  # the next period tries again; the lease outlives 3 misses
            self.failures += 1
            log.debug("kubelet %s: heartbeat failed: %s", kubelet.name, exc)
        finally:
            self._busy.discard(kubelet.name)


class KubeletHost:
    def __init__(self, client: Client, kubelets: list[Kubelet], *, config: KubeletConfig,
                 pod_field_selector: str = "spec.nodeName!=", node_field_selector: str = "") -> None:
        self.client, self.config = client, config
        self.kubelets: dict[str, Kubelet] = {k.name: k for k in kubelets}
        self.pod_informer = Informer(client, PODS, field_selector=pod_field_selector)
        self.node_informer = Informer(client, NODES, field_selector=node_field_selector)
        self.wheel = HeartbeatWheel(config.renew_interval, slots=min(len(kubelets), MAX_SLOTS),
                                    concurrency=config.register_concurrency)
        self._tasks: list[asyncio.Task[None]] = []
        self.pod_informer.add_handlers(Handlers(on_add=self._pod_added, on_update=self._pod_updated,
                                                on_delete=self._pod_deleted))
        self.node_informer.add_handlers(Handlers(on_add=self._node_changed,
                                                 on_update=lambda old, new: self._node_changed(new)))

    async def start(self) -> None:
        """Watch first (so nodes arrive as events while they register, not as one huge list
        afterwards), then register every kubelet with bounded concurrency, each heartbeating as
        soon as it is registered: registering thousands takes longer than a lease lasts."""
        for name, job in (("pods", self.pod_informer.run()), ("nodes", self.node_informer.run()),
                          ("heartbeats", self.wheel.run())):
            self._tasks.append(asyncio.create_task(job, name=f"kubelet-host:{name}"))
        await asyncio.gather(self.pod_informer.wait_synced(), self.node_informer.wait_synced())
        limit = asyncio.Semaphore(self.config.register_concurrency)

        async def register(kubelet: Kubelet) -> None:
            async with limit:
                await kubelet.register()
            self.wheel.add(kubelet)

        await asyncio.gather(*(register(k) for k in self.kubelets.values()))

    async def stop_node(self, name: str) -> None:
        """Silence one kubelet, as if its machine died."""
        kubelet = self.kubelets.pop(name)
        self.wheel.remove(kubelet)
        await kubelet.stop()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await asyncio.gather(*(k.stop() for k in self.kubelets.values()))

    # ----- dispatch ------------------------------------------------------------------------------

    def _kubelet_of(self, pod: Obj) -> Kubelet | None:
        return self.kubelets.get(_node_name(pod))

    def _pod_added(self, pod: Obj) -> None:
        kubelet = self._kubelet_of(pod)
        if kubelet is not None:
            kubelet.pod_changed(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if _uid(old) != _uid(new) or _node_name(old) != _node_name(new):
            self._pod_deleted(old)  # the name now belongs to another pod
        self._pod_added(new)

    def _pod_deleted(self, pod: Obj) -> None:
        kubelet = self._kubelet_of(pod)
        if kubelet is not None:
            kubelet.pod_deleted(pod)

    def _node_changed(self, node: Obj) -> None:
        kubelet = self.kubelets.get(str((node.get("metadata") or {}).get("name")))
        if kubelet is not None:
            kubelet.node_changed(node)

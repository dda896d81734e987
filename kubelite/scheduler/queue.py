"""The scheduling queue (upstream's PriorityQueue): which pending pod to try next, and when to try
a pod again.

Three places a waiting pod can be:
- *active*: ready to try; popped highest priority first, then oldest (creationTimestamp), then in
  arrival order;
- *backoff*: tried and failed recently; goes back to active when its backoff ends (1s after the
  first attempt, doubling per attempt up to 10s);
- *unschedulable*: no node fitted; it stays there until a cluster event that could make it fit
  happens (a node added, a node's taints/labels/allocatable/cordon changed, a placed pod deleted:
  only events that concern the plugins that rejected it), or 5 minutes pass; then it goes to
  backoff if its backoff has not ended yet, else to active.
A popped pod is *in flight* (tracked, in no queue) until the scheduler requeues it or it is
deleted/bound. Pods with schedulingGates wait in unschedulable until an update clears the gates.

Time comes from `clock` so tests drive it; `pop()` is the only coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubelite.scheduler.podinfo import Obj, PodInfo, pod_key

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE_SECONDS = 300.0
LEFTOVER_FLUSH_INTERVAL = 30.0
GATED = "SchedulingGates"
ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT = "active", "backoff", "unschedulable", "in-flight"


@dataclass(eq=False)
class QueuedPod:
    key: str
    pod: Obj
    arrival: int
    attempts: int = 0
    timestamp: float = 0.0  # when it last entered a queue after an attempt (backoff starts here)
    unschedulable_plugins: frozenset[str] = frozenset()
    where: str = ""
    token: int = 0  # identifies its live heap entry (older entries are skipped)
    _info: PodInfo | None = field(default=None, repr=False)

    @property
    def priority(self) -> int:
        return int((self.pod.get("spec") or {}).get("priority") or 0)

    @property
    def info(self) -> PodInfo:
        """The PodInfo of the current object (rebuilt when the object changed)."""
        if self._info is None or self._info.pod is not self.pod:
            self._info = PodInfo.of(self.pod)
        return self._info


def backoff_duration(attempts: int, *, initial: float = INITIAL_BACKOFF, maximum: float = MAX_BACKOFF) -> float:
    duration = initial
    for _ in range(1, attempts):
        duration *= 2
        if duration >= maximum:
            return maximum
    return duration


def gated(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("schedulingGates"))


def meaningfully_updated(old: Obj, new: Obj) -> bool:
    """Upstream's isPodUpdated: a change beyond status, resourceVersion, generation, managedFields
    and finalizers (our own status patches must not retrigger scheduling)."""
    def strip(pod: Obj) -> Obj:
        meta = {k: v for k, v in (pod.get("metadata") or {}).items()
                if k not in ("resourceVersion", "generation", "managedFields", "finalizers")}
        return {**{k: v for k, v in pod.items() if k != "status"}, "metadata": meta}
    return strip(old) != strip(new)


class SchedulingQueue:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic, initial_backoff: float = INITIAL_BACKOFF,
                 max_backoff: float = MAX_BACKOFF, max_unschedulable: float = MAX_UNSCHEDULABLE_SECONDS) -> None:
        self.clock = clock
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.max_unschedulable = max_unschedulable
        self.pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[Any, ...]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._unschedulable: dict[str, QueuedPod] = {}
        self._arrivals = itertools.count()
        self._tokens = itertools.count(1)
        self._wakeup: asyncio.Event | None = None
        self._last_leftover_flush = clock()

    # ----- informer-driven changes ---------------------------------------------------------------

    def add(self, pod: Obj) -> None:
        key = pod_key(pod)
        if key in self.pods:
            self.update(self.pods[key].pod, pod)
            return
        qp = self.pods[key] = QueuedPod(key, pod, next(self._arrivals), timestamp=self.clock())
        if gated(pod):
            self._to_unschedulable(qp, frozenset({GATED}))
        else:
            self._to_active(qp)

    def update(self, old: Obj, new: Obj) -> None:
        qp = self.pods.get(pod_key(new))
        if qp is None:
            self.add(new)
            return
        qp.pod = new
        if qp.where == UNSCHEDULABLE and meaningfully_updated(old, new) and not gated(new):
            self._release(qp)

    def delete(self, key: str) -> None:
        qp = self.pods.pop(key, None)
        if qp is not None:
            self._unschedulable.pop(key, None)
            qp.where = ""  # any heap entry left behind is now stale

    def move(self, plugins: frozenset[str] | None) -> int:
        """A cluster event happened that could help pods rejected by `plugins` (None: any pod)."""
        moved = 0
        for qp in list(self._unschedulable.values()):
            if GATED in qp.unschedulable_plugins:
                continue
            if plugins is None or not qp.unschedulable_plugins or qp.unschedulable_plugins & plugins:
                self._release(qp)
                moved += 1
        return moved

    # ----- the scheduler's side ------------------------------------------------------------------

    def pop_nowait(self) -> QueuedPod | None:
        self.flush()
        while self._active:
            *_, token, key = heapq.heappop(self._active)
            qp = self.pods.get(key)
            if qp is not None and qp.where == ACTIVE and qp.token == token:
                qp.where = IN_FLIGHT
                qp.attempts += 1
                return qp
        return None

    async def pop(self) -> QueuedPod:
        while True:
            qp = self.pop_nowait()
            if qp is not None:
                return qp
            if self._wakeup is None:
                self._wakeup = asyncio.Event()
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._idle_timeout())

    def requeue_unschedulable(self, qp: QueuedPod, plugins: Iterable[str]) -> None:
        """After an attempt no node fitted: wait for an event (or, with no plugin to blame, backoff)."""
        if self.pods.get(qp.key) is not qp:
            return  # deleted or replaced while in flight
        qp.timestamp = self.clock()
        blamed = frozenset(plugins)
        if blamed:
            self._to_unschedulable(qp, blamed)
        else:
            self._to_backoff(qp)

    def requeue_backoff(self, qp: QueuedPod) -> None:
        """After an error (a failed binding): try again once the backoff ends."""
        if self.pods.get(qp.key) is qp:
            qp.timestamp = self.clock()
            self._to_backoff(qp)

    def flush(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, token, key = heapq.heappop(self._backoff)
            qp = self.pods.get(key)
            if qp is not None and qp.where == BACKOFF and qp.token == token:
                self._to_active(qp)
        if now - self._last_leftover_flush >= LEFTOVER_FLUSH_INTERVAL:
            self._last_leftover_flush = now
            for qp in list(self._unschedulable.values()):
                if now - qp.timestamp >= self.max_unschedulable and GATED not in qp.unschedulable_plugins:
                    self._release(qp)

    # ----- moves between queues ------------------------------------------------------------------

    def backoff_expiry(self, qp: QueuedPod) -> float:
        return qp.timestamp + backoff_duration(qp.attempts, initial=self.initial_backoff, maximum=self.max_backoff)

    def _release(self, qp: QueuedPod) -> None:
        self._unschedulable.pop(qp.key, None)
        if qp.attempts and self.backoff_expiry(qp) > self.clock():
            self._to_backoff(qp)
        else:
            self._to_active(qp)

    def _to_active(self, qp: QueuedPod) -> None:
        qp.where, qp.token = ACTIVE, next(self._tokens)
        created = str((qp.pod.get("metadata") or {}).get("creationTimestamp") or "")
        heapq.heappush(self._active, (-qp.priority, created, qp.arrival, qp.token, qp.key))
        if self._wakeup is not None:
            self._wakeup.set()

    def _to_backoff(self, qp: QueuedPod) -> None:
        qp.where, qp.token = BACKOFF, next(self._tokens)
        heapq.heappush(self._backoff, (self.backoff_expiry(qp), qp.token, qp.key))
        if self._wakeup is not None:
            self._wakeup.set()  # so pop() re-arms its timer for the new expiry

    def _to_unschedulable(self, qp: QueuedPod, plugins: frozenset[str]) -> None:
        qp.where, qp.unschedulable_plugins = UNSCHEDULABLE, plugins
        self._unschedulable[qp.key] = qp

    def _idle_timeout(self) -> float:
        now = self.clock()
        deadline = self._last_leftover_flush + LEFTOVER_FLUSH_INTERVAL
        if self._backoff:
            deadline = min(deadline, self._backoff[0][0])
        return max(deadline - now, 0.001)

    # ----- introspection -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        where = [qp.where for qp in self.pods.values()]
        return {name: where.count(name) for name in (ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT)}

    def __len__(self) -> int:
        return len(self.pods)

"""Leader election on a coordination.k8s.io/v1 Lease (client-go's leaderelection).

Whoever holds the lease runs the guarded work; everyone else keeps trying. The holder renews every
`retry_period`; a candidate takes over when it has seen the same lease record unchanged for
`lease_duration` (judged by its own clock, so clock skew between servers does not matter). A holder
that cannot renew within `renew_deadline` stops its work before anyone else may start.
Writes use compare-and-swap on resourceVersion, so two candidates can never both win.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from kubelite.client.resources import LEASES
from kubelite.client.rest import Client
from kubelite.objects.errors import AlreadyExists, Conflict, NotFound, StatusError

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, client: Client, name: str, identity: str, *, namespace: str = "kube-system",
                 lease_duration: float = 15.0, renew_deadline: float = 10.0, retry_period: float = 2.0) -> None:
        self.client, self.name, self.identity, self.namespace = client, name, identity, namespace
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self._observed: tuple[Any, float] = (None, 0.0)  # (holder record, when we first saw it)
        self.is_leader = False

    async def run(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Forever: acquire the lease, run `work` while renewing, stop it if the lease is lost.
        Cancelling `run` stops the work first and only then releases the lease, so a successor
        never overlaps with this process's work (client-go's ReleaseOnCancel)."""
        while True:
            await self._acquire()
            log.info("%s: %s became leader", self.name, self.identity)
            task = asyncio.create_task(work(), name=f"leader:{self.name}")
            try:
                await self._renew_until_lost(task)
            except asyncio.CancelledError:
                await self._stop(task)
                with contextlib.suppress(TimeoutError):
                    await asyncio.shield(asyncio.wait_for(self.release(), 2.0))
                raise
            await self._stop(task)
            log.warning("%s: %s lost the lease", self.name, self.identity)

    async def _stop(self, task: asyncio.Task[None]) -> None:
        self.is_leader = False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def _acquire(self) -> None:
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self.retry_period)
        self.is_leader = True

    async def _renew_until_lost(self, task: asyncio.Task[None]) -> None:
        """Renew every retry period; give up at exactly `renew_deadline` after the last success,
        bounding each attempt by the time left (a hung request must not keep us leading)."""
        deadline = time.monotonic() + self.renew_deadline
        while not task.done():
            await asyncio.sleep(min(self.retry_period, max(0.0, deadline - time.monotonic())))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                renewed = await asyncio.wait_for(self._try_acquire_or_renew(), remaining)
            except TimeoutError:
                return
            if renewed:
                deadline = time.monotonic() + self.renew_deadline
        if task.exception() is not None:
            log.error("%s: leader work failed: %s", self.name, task.exception())

    async def _try_acquire_or_renew(self) -> bool:
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except NotFound:
            return await self._create()
        except (StatusError, OSError) as exc:
            log.debug("%s: reading lease failed: %s", self.name, exc)
            return False
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if holder and holder != self.identity and not self._expired(spec):
            return False
        return await self._take(lease, renewing=holder == self.identity)

    def _expired(self, spec: Obj) -> bool:
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed[0]:
            self._observed = (record, time.monotonic())
            return False
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        return time.monotonic() - self._observed[1] > duration

    async def _create(self) -> bool:
        now = micro_now()
        lease = {"metadata": {"name": self.name, "namespace": self.namespace},
                 "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                          "acquireTime": now, "renewTime": now, "leaseTransitions": 0}}
        try:
            await self.client.create(LEASES, lease, self.namespace)
        except (AlreadyExists, Conflict):
            return False
        except (StatusError, OSError) as exc:
            log.debug("%s: creating lease failed: %s", self.name, exc)
            return False
        return True

    async def _take(self, lease: Obj, *, renewing: bool) -> bool:
        spec = lease.setdefault("spec", {})
        now = micro_now()
        if not renewing:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update({"holderIdentity": self.identity, "renewTime": now,
                     "leaseDurationSeconds": int(self.lease_duration)})
        try:
            await self.client.update(LEASES, lease)  # carries resourceVersion: compare-and-swap
        except (StatusError, OSError) as exc:
            log.debug("%s: updating lease failed: %s", self.name, exc)
            return False
        return True

    async def release(self) -> None:
        """Give the lease up on a clean shutdown so a successor need not wait it out."""
        with contextlib.suppress(StatusError, OSError):
            lease = await self.client.get(LEASES, self.name, self.namespace)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                await self.client.update(LEASES, lease)

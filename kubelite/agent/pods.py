"""A kubelet's pods: each pod's worker makes the runtime match the pod, then reports its status.

Per pod, in its own worker (`PodWorkers`: pods in parallel, each pod sequential):
- a pod gone from the API: stop its containers, remove its sandbox (addresses released);
- a pod with a deletionTimestamp: stop its containers within its grace period, report them
  terminated (phase Succeeded, or Failed if one exited non-zero), remove the sandbox, then delete
  the pod with gracePeriodSeconds=0 and a UID precondition, as upstream's status manager does;
- any other pod: create its sandbox (an address from the node's podCIDR; without a podCIDR yet
  the pod waits in ContainerCreating), run init containers, start containers, and report status.
  Containers become Ready `ready_delay` (+ the readiness probe's initialDelaySeconds) after
  starting; the worker comes back when that is due.

Status is written only when it differs from what the API holds (or what we last wrote, if the
watch has not caught up yet), so the watch event of our own write costs no second write.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from kubelite.agent import podstatus
from kubelite.agent.clock import now_rfc3339
from kubelite.agent.podworkers import PodWorkers
from kubelite.agent.runtime.interface import SandboxError
from kubelite.client.resources import PODS
from kubelite.objects.errors import Conflict, NotFound

if TYPE_CHECKING:
    from kubelite.agent.kubelet import Kubelet

Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")
SANDBOX_RETRY = 5.0


def _uid(pod: Obj) -> str:
    return str(pod["metadata"].get("uid") or "")


def _rv(pod: Obj) -> int:
    try:
        return int(pod["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def ready_delay(container: Obj, base: float) -> float:
    probe = container.get("readinessProbe") or {}
    return base + float(probe.get("initialDelaySeconds") or 0)


class PodManager:
    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet
        self.runtime = kubelet.runtime
        self.workers = PodWorkers(self.sync, name=f"pods:{kubelet.name}")
        self._ready_at: dict[str, dict[str, float]] = {}  # uid -> container -> monotonic time
        self._written: dict[str, Obj] = {}  # uid -> the pod as our last status write returned it
        self._waiting: set[str] = set()  # uids without a sandbox for want of a podCIDR

    def update(self, pod: Obj, *, deleted: bool = False) -> None:
        uid = _uid(pod)
        if uid:
            self.workers.update(uid, pod, deleted=deleted)

    def resync_waiting(self) -> None:
        for uid in list(self._waiting):
            self.workers.resync(uid)

    async def stop(self) -> None:
        await self.workers.stop()

    # ----- the sync ----------------------------------------------------------------------------

    async def sync(self, pod: Obj, deleted: bool) -> float | None:
        uid = _uid(pod)
        if deleted:
            await self._kill(uid)
            return None
        if pod["metadata"].get("deletionTimestamp"):
            await self._terminate(pod)
            return None
        if ((pod.get("status") or {}).get("phase")) in TERMINAL:
            await self._kill(uid)
            return None
        return await self._run(pod)

    async def _run(self, pod: Obj) -> float | None:
        uid, spec = _uid(pod), pod.get("spec") or {}
        try:
            await self.runtime.create_sandbox(pod, host_ip=self.kubelet.node_config.internal_ip)
        except SandboxError as exc:
            if uid not in self._waiting:
                self._waiting.add(uid)
                self.kubelet.record(pod, "Warning", "FailedCreatePodSandBox",
                                    f"Failed to create pod sandbox: {exc}")
            await self._write_status(pod, waiting_reason="ContainerCreating")
            return SANDBOX_RETRY
        self._waiting.discard(uid)
        for container in spec.get("initContainers") or []:
            await self._start(pod, container, init=True)
        for container in spec.get("containers") or []:
            await self._start(pod, container, init=False)
        return await self._write_status(pod)

    async def _start(self, pod: Obj, container: Obj, *, init: bool) -> None:
        uid, name = _uid(pod), str(container.get("name"))
        status = self.runtime.pod_status(uid)
        table = (status.init_containers if init else status.containers) if status else {}
        if name in table:
            return
        image = str(container.get("image") or "")
        await self.runtime.start_container(uid, container, init=init)
        self.kubelet.record(pod, "Normal", "Pulled", f'Container image "{image}" already present on machine')
        self.kubelet.record(pod, "Normal", "Created", f"Created container: {name}")
        self.kubelet.record(pod, "Normal", "Started", f"Started container {name}")
        if not init or container.get("restartPolicy") == "Always":
            delay = ready_delay(container, self.kubelet.config.ready_delay)
            self._ready_at.setdefault(uid, {})[name] = time.monotonic() + delay

    def _ready_names(self, uid: str) -> tuple[set[str], float | None]:
        """Containers that are Ready now, and how long until the next one is."""
        now = time.monotonic()
        times = self._ready_at.get(uid, {})
        ready = {name for name, at in times.items() if at <= now}
        pending = [at - now for at in times.values() if at > now]
        return ready, (min(pending) if pending else None)

    async def _write_status(self, pod: Obj, *, terminal: bool = False, waiting_reason: str = "") -> float | None:
        uid = _uid(pod)
        ready, next_ready = self._ready_names(uid)
        latest = self._written.get(uid)
        if latest is not None and _rv(latest) <= _rv(pod):
            latest = self._written.pop(uid)  # the watch has caught up with our write
        current_pod = latest if latest is not None and _rv(latest) > _rv(pod) else pod
        current = current_pod.get("status") or {}
        now = now_rfc3339()
        desired = podstatus.desired_status(
            current_pod, self.runtime.pod_status(uid), runtime=self.runtime.version().name,
            host_ip=self.kubelet.node_config.internal_ip, ready_names=ready, now=now, terminal=terminal,
            waiting_reason=waiting_reason)
        desired = podstatus.with_transition_times(desired, current, now)
        if podstatus.differs(desired, current):
            meta = pod["metadata"]
            try:
                self._written[uid] = await self.kubelet.client.patch(
                    PODS, meta["name"], podstatus.status_patch(desired, current), meta["namespace"],
                    patch_type="strategic", subresource="status")
            except NotFound:
                return None
        return next_ready

    async def _terminate(self, pod: Obj) -> None:
        uid, meta = _uid(pod), pod["metadata"]
        grace = int(meta.get("deletionGracePeriodSeconds") or 0)
        status = self.runtime.pod_status(uid)
        if status is not None:
            for state in list(status.containers.values()) + list(status.init_containers.values()):
                if state.state == "running":
                    self.kubelet.record(pod, "Normal", "Killing", f"Stopping container {state.name}")
                    await self.runtime.stop_container(uid, state.name, grace_seconds=grace)
            await self._write_status(pod, terminal=True)
        await self._kill(uid)
        with contextlib.suppress(NotFound, Conflict):  # gone already, or a new pod of the same name
            await self.kubelet.client.delete(PODS, meta["name"], meta["namespace"], grace_period=0,
                                             preconditions={"uid": uid})

    async def _kill(self, uid: str) -> None:
        status = self.runtime.pod_status(uid)
        if status is not None:
            for state in list(status.containers.values()) + list(status.init_containers.values()):
                if state.state == "running":
                    await self.runtime.stop_container(uid, state.name, grace_seconds=0)
            await self.runtime.remove_sandbox(uid)
        self._ready_at.pop(uid, None)
        self._written.pop(uid, None)
        self._waiting.discard(uid)

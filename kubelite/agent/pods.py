"""A kubelet's pods: each pod's worker makes the runtime match the pod, then reports its status.

Per pod, in its own worker (`PodWorkers`: pods in parallel, each pod sequential):
- a pod gone from the API: stop its containers, remove its sandbox, volumes and probe workers;
- a pod with a deletionTimestamp: stop its containers within its grace period (regular ones in
  parallel, then sidecars, each after its preStop hook), report them terminated (phase Succeeded,
  or Failed if one exited non-zero), remove the sandbox, then delete the pod with
  gracePeriodSeconds=0 and a UID precondition, as upstream's status manager does;
- a pod the API reports Succeeded/Failed: stop and remove whatever is left;
- any other pod: set up its volumes, create its sandbox (an address from the node's podCIDR;
  without one the pod waits in ContainerCreating), work out what its containers need
  (`podactions`: init containers in order, restarts by policy, liveness kills), do it
  (`containers`: back-off, image, env, mounts, start, hooks), and report status. A pod whose
  containers all finished for good gets its terminal phase written, then its sandbox removed.
A sync returns when to sync again: a back-off or readiness coming due, a retry, or the next
refresh of its configMap/secret volumes. Container exits (`runtime.on_container_exit`) and probe
verdict changes resync the pod at once.

Status is written only when it differs from what the API holds (or what we last wrote, if the
watch has not caught up yet), so the watch event of our own write costs no second write.

After an agent restart the runtime still runs its pods: the first sync of such a pod adopts it
(`podstate.adopt`: lastState, ready and started from the API status of the same container IDs)
and starts nothing that runs; `cleanup_orphans` removes what belongs to pods no longer bound here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelite.agent import podactions, podstate, podstatus
from kubelite.agent.apireads import ApiReads
from kubelite.agent.clock import now_rfc3339
from kubelite.agent.containers import ContainerOps, grace_seconds
from kubelite.agent.env import PodFacts
from kubelite.agent.imagepull import ImagePuller
from kubelite.agent.podstate import PodState
from kubelite.agent.podworkers import PodWorkers
from kubelite.agent.probes import ProbeContext, ProbeManager
from kubelite.agent.restarts import Backoff, is_sidecar
from kubelite.agent.runtime.interface import PodRuntimeStatus, SandboxError
from kubelite.agent.volumes import VolumeManager, VolumeSetupError, uses_files
from kubelite.client.resources import PODS
from kubelite.objects.errors import Conflict, NotFound

if TYPE_CHECKING:
    from kubelite.agent.kubelet import Kubelet

log = logging.getLogger(__name__)
Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")
SANDBOX_RETRY = 5.0
VOLUME_RETRY = 2.0  # nominal seconds


def _uid(pod: Obj) -> str:
    return str(pod["metadata"].get("uid") or "")


def _rv(pod: Obj) -> int:
    try:
        return int(pod["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def _container(pod: Obj, name: str) -> Obj:
    spec = pod.get("spec") or {}
    return next((c for k in ("containers", "initContainers") for c in spec.get(k) or [] if c.get("name") == name), {})


class PodManager:
    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet
        self.runtime = kubelet.runtime
        self.client = kubelet.client
        config = kubelet.config
        self.scale = config.time_scale
        self.workers = PodWorkers(self.sync, name=f"pods:{kubelet.name}")
        self.backoff = Backoff(scale=self.scale)
        self.images = ImagePuller(kubelet.images, scale=self.scale, client=kubelet.client)
        self.probes = ProbeManager(self.runtime, context=self._probe_context, notify=self.resync,
                                   record=kubelet.record, scale=self.scale)
        self.runtime_name = self.runtime.version().name
        links = config.service_links
        self.reads = ApiReads(self.client, service_links=links if links is not None else self.runtime_name != "fake")
        self.volumes = VolumeManager(Path(config.root_dir), self.reads.fetch) if config.root_dir else None
        self.ops = ContainerOps(self)
        self._states: dict[str, PodState] = {}
        self._written: dict[str, Obj] = {}  # uid -> the pod as our last status write returned it
        self._waiting: set[str] = set()  # uids without a sandbox for want of a podCIDR

    # ----- entry points ------------------------------------------------------------------------

    def update(self, pod: Obj, *, deleted: bool = False) -> None:
        uid = _uid(pod)
        if uid:
            self.workers.update(uid, pod, deleted=deleted)

    def resync(self, uid: str) -> None:
        self.workers.resync(uid)

    def container_exited(self, uid: str, name: str) -> None:
        self.workers.resync(uid)

    def resync_waiting(self) -> None:
        for uid in list(self._waiting):
            self.workers.resync(uid)

    async def cleanup_orphans(self) -> None:
        """Remove the sandboxes and volumes of pods this node no longer has (deleted while the
        agent was away). Call once the pod informer has delivered this node's pods."""
        known = set(self.workers.known())
        for uid in [u for u in self.runtime.pod_uids() if u not in known]:
            log.info("kubelet %s: removing pod %s, deleted while the agent was away", self.kubelet.name, uid)
            try:
                await self.runtime.remove_sandbox(uid)
            except Exception as exc:  # the others must still go; a later restart tries again
                log.warning("kubelet %s: could not remove pod %s: %s", self.kubelet.name, uid, exc)
        if self.volumes is not None:
            for uid in [u for u in self.volumes.pod_uids() if u not in known]:
                try:
                    await self.volumes.teardown(uid)
                except OSError as exc:
                    log.warning("kubelet %s: could not remove the volumes of pod %s: %s", self.kubelet.name, uid, exc)

    async def stop(self) -> None:
        await self.workers.stop()
        for st in self._states.values():
            for task in list(st.tasks):
                task.cancel()
        await self.probes.stop()

    # ----- helpers for containers / probes -----------------------------------------------------

    def record(self, pod: Obj, event_type: str, reason: str, message: str, *, container: str = "") -> None:
        self.kubelet.record(pod, event_type, reason, message)

    def pod_ip(self, uid: str) -> str:
        rt = self.runtime.pod_status(uid)
        return rt.sandbox.ips[0] if rt is not None and rt.sandbox.ips else ""

    def facts(self, pod: Obj) -> PodFacts:
        rt = self.runtime.pod_status(_uid(pod))
        node = self.kubelet.node_config
        return PodFacts(pod_ips=rt.sandbox.ips if rt else (), host_ip=node.internal_ip,
                        node_allocatable={"cpu": node.cpu, "memory": node.memory,
                                          "ephemeral-storage": node.ephemeral_storage})

    def _probe_context(self, uid: str, name: str) -> ProbeContext | None:
        pod, st = self.workers.pod(uid), self._states.get(uid)
        if pod is None or st is None:
            return None
        rt = self.runtime.pod_status(uid)
        state = (rt.containers.get(name) or rt.init_containers.get(name)) if rt else None
        if state is None:
            return ProbeContext(pod, _container(pod, name), "", False, 0.0)
        since = time.monotonic() - st.started_at.get(state.id, time.monotonic())
        return ProbeContext(pod, _container(pod, name), state.id, state.state == "running", since / self.scale,
                            self.pod_ip(uid))

    # ----- the sync ----------------------------------------------------------------------------

    async def sync(self, pod: Obj, deleted: bool) -> float | None:
        if deleted:
            await self._shutdown(pod)
            return None
        if pod["metadata"].get("deletionTimestamp"):
            await self._terminate(pod)
            return None
        if ((pod.get("status") or {}).get("phase")) in TERMINAL:
            await self._shutdown(pod)
            return None
        return await self._run(pod)

    def _state(self, pod: Obj) -> PodState:
        uid = _uid(pod)
        st = self._states.get(uid)
        if st is None:
            st = self._states[uid] = PodState(uid)
            rt = self.runtime.pod_status(uid)
            if rt is not None:  # the runtime ran it before this kubelet started: adopt it
                for name, (cid, ready, started) in podstate.adopt(st, pod, rt, runtime=self.runtime_name).items():
                    self.probes.seed(uid, name, cid, ready=ready, started=started)
        return st

    async def _run(self, pod: Obj) -> float | None:
        st = self._state(pod)
        delays: list[float] = []
        volume_delay = await self._volumes(pod, st)
        if volume_delay is not None:
            return volume_delay
        rt = await self._sandbox(pod)
        if rt is None:
            return SANDBOX_RETRY
        podstate.observe(st, rt)
        self.probes.add_pod(pod)
        actions = podactions.compute(pod, rt, failed=lambda n, cid: self.probes.failed(st.uid, n, cid),
                                     started=lambda n, cid: self.probes.started(st.uid, n, cid))
        for kill in actions.kill:
            probe = _container(pod, kill.name).get(f"{kill.probe}Probe")
            await self.ops.kill(pod, kill.name, grace=grace_seconds(pod, probe=probe), message=kill.message)
        if actions.failed or actions.done:
            await self._stop_running(pod, grace_seconds(pod))
        podstate.observe(st, self.runtime.pod_status(st.uid))
        for start in actions.start:
            delay = await self.ops.start(pod, st, start.container, init=start.init)
            if delay:
                delays.append(delay)
        next_ready, phase = await self._write_status(pod)
        if phase in TERMINAL:
            await self._shutdown(pod, stop=False)
            return None
        if next_ready is not None:
            delays.append(next_ready)
        if self.volumes is not None and uses_files(pod):
            delays.append(max(0.01, st.volumes_refresh_at - time.monotonic()))
        return min(delays) if delays else None

    async def _volumes(self, pod: Obj, st: PodState) -> float | None:
        """Set up (or refresh) the pod's volumes; the retry delay when one cannot be."""
        if not (pod.get("spec") or {}).get("volumes"):
            return None
        if self.volumes is None:
            if self.runtime_name == "fake":
                return None  # hollow containers have no files to mount
            message = "this kubelet has no root directory for pod volumes (KubeletConfig.root_dir)"
            if st.note_once("FailedMount", message):
                self.record(pod, "Warning", "FailedMount", message)
            await self._write_status(pod, waiting_reason="ContainerCreating")
            return VOLUME_RETRY * 30 * self.scale
        now = time.monotonic()
        if st.volume_paths is not None and (not uses_files(pod) or now < st.volumes_refresh_at):
            return None
        try:
            st.volume_paths = await self.volumes.setup(pod, self.facts(pod), refresh=True)
        except VolumeSetupError as exc:
            if st.note_once("FailedMount", str(exc)):
                self.record(pod, "Warning", "FailedMount", str(exc))
            if st.volume_paths is None:  # keep running what runs; only a first setup holds the pod back
                await self._write_status(pod, waiting_reason="ContainerCreating")
                return VOLUME_RETRY * self.scale
        st.volumes_refresh_at = now + self.kubelet.config.sync_frequency * self.scale
        return None

    async def _sandbox(self, pod: Obj) -> PodRuntimeStatus | None:
        uid = _uid(pod)
        if not self.kubelet.registered.is_set():  # the Node (and its podCIDR) is not read yet: no
            self._waiting.add(uid)                # failure to report, registration resyncs the pod
            await self._write_status(pod, waiting_reason="ContainerCreating")
            return None
        try:
            await self.runtime.create_sandbox(pod, host_ip=self.kubelet.node_config.internal_ip)
        except SandboxError as exc:
            if uid not in self._waiting:
                self._waiting.add(uid)
                self.record(pod, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            await self._write_status(pod, waiting_reason="ContainerCreating")
            return None
        self._waiting.discard(uid)
        return self.runtime.pod_status(uid)

    # ----- status ------------------------------------------------------------------------------

    def _view(self, pod: Obj, st: PodState | None, rt: PodRuntimeStatus | None) -> tuple[podstatus.KubeletView,
                                                                                         float | None]:
        """The kubelet's view of the containers, and how long until a hollow container turns Ready."""
        ready, unstarted, pending = set(), set(), []
        now = time.monotonic()
        delay = self.kubelet.config.ready_delay
        for state, _init in podstate.all_states(rt) if rt else []:
            if state.state != "running":
                continue
            if not self.probes.started(_uid(pod), state.name, state.id):
                unstarted.add(state.name)
            elif self.probes.ready(_uid(pod), state.name, state.id):
                container = _container(pod, state.name)
                at = (st.started_at.get(state.id, now) if st else now) + \
                    (delay if "readinessProbe" not in container else 0.0)
                if at <= now:
                    ready.add(state.name)
                else:
                    pending.append(at - now)
        view = podstatus.KubeletView(frozenset(ready), frozenset(unstarted), dict(st.waiting) if st else {},
                                     dict(st.last_terminated) if st else {})
        return view, (min(pending) if pending else None)

    async def _write_status(self, pod: Obj, *, terminal: bool = False,
                            waiting_reason: str = "") -> tuple[float | None, str]:
        uid = _uid(pod)
        latest = self._written.get(uid)
        if latest is not None and _rv(latest) <= _rv(pod):
            latest = self._written.pop(uid)  # the watch has caught up with our write
        current_pod = latest if latest is not None and _rv(latest) > _rv(pod) else pod
        current = current_pod.get("status") or {}
        now = now_rfc3339()
        rt = self.runtime.pod_status(uid)
        view, next_ready = self._view(pod, self._states.get(uid), rt)
        desired = podstatus.desired_status(current_pod, rt, view, runtime=self.runtime_name,
                                           host_ip=self.kubelet.node_config.internal_ip, now=now, terminal=terminal,
                                           waiting_reason=waiting_reason)
        desired = podstatus.with_transition_times(desired, current, now)
        if podstatus.differs(desired, current):
            meta = pod["metadata"]
            try:
                self._written[uid] = await self.client.patch(
                    PODS, meta["name"], podstatus.status_patch(desired, current), meta["namespace"],
                    patch_type="strategic", subresource="status")
            except NotFound:
                return None, ""
        return next_ready, str(desired.get("phase"))

    # ----- stopping ----------------------------------------------------------------------------

    async def _stop_running(self, pod: Obj, grace: int, *, message: str = "") -> None:
        """Stop what runs: regular containers in parallel, then sidecars in reverse order, then
        anything else, all within one grace period."""
        uid = _uid(pod)
        rt = self.runtime.pod_status(uid)
        if rt is None:
            return
        deadline = time.monotonic() + grace
        spec = pod.get("spec") or {}
        sidecars = [str(c.get("name")) for c in reversed(spec.get("initContainers") or []) if is_sidecar(c)]
        groups = [[n for n, s in rt.containers.items() if s.state == "running"], *([n] for n in sidecars),
                  [n for n, s in rt.init_containers.items() if s.state == "running" and n not in sidecars]]
        for group in groups:
            left = max(0.0, deadline - time.monotonic()) if grace > 0 else 0.0
            await asyncio.gather(*(self.ops.kill(pod, name, grace=left if grace > 0 else 0,
                                                 message=message or f"Stopping container {name}") for name in group))

    async def _terminate(self, pod: Obj) -> None:
        uid, meta = _uid(pod), pod["metadata"]
        self._state(pod)
        await self._stop_running(pod, grace_seconds(pod))
        if self.runtime.pod_status(uid) is not None:
            await self._write_status(pod, terminal=True)
        await self._shutdown(pod, stop=False)
        with contextlib.suppress(NotFound, Conflict):  # gone already, or a new pod of the same name
            await self.client.delete(PODS, meta["name"], meta["namespace"], grace_period=0, preconditions={"uid": uid})

    async def _shutdown(self, pod: Obj, *, stop: bool = True) -> None:
        """Stop whatever runs and forget the pod: sandbox, volumes, probes, back-offs."""
        uid = _uid(pod)
        if stop:
            await self._stop_running(pod, grace_seconds(pod))
        st = self._states.pop(uid, None)
        if st is not None and st.tasks:  # init containers just stopped: their starts return now
            _, pending = await asyncio.wait(set(st.tasks), timeout=10.0)
            for task in pending:
                task.cancel()
        await self.probes.remove_pod(uid)
        if self.runtime.pod_status(uid) is not None:
            await self.runtime.remove_sandbox(uid)
        if self.volumes is not None:
            await self.volumes.teardown(uid)
        self.backoff.forget(f"{uid}/")
        self.images.forget(uid)
        self._written.pop(uid, None)
        self._waiting.discard(uid)

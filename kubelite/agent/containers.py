"""Starting and stopping one container, as upstream's kuberuntime does it.

start (`ContainerOps.start`): an instance that exited waits out its back-off first
(CrashLoopBackOff, event BackOff), then the image is checked (`imagepull`), the environment
resolved (`env`) and the mounts built (`volumes`) — a missing ConfigMap key is a
CreateContainerConfigError — then the runtime starts it (events Created, Started; a process that
cannot start is a RunContainerError), then its postStart hook runs (a failure kills it:
PostStartHookError). Whatever stops a start is recorded in the pod's `waiting` reasons, which the
status shows, and the delay after which trying again makes sense is returned.

A regular init container runs to completion inside the runtime's start_container, so it is started
in a task of its own and the pod worker stays free (a pod can be deleted meanwhile); the task
resyncs the pod when it ends.

stop (`ContainerOps.kill`): event Killing, the preStop hook within the grace period, then the
runtime's stop with what is left of it (at least 2 s, as upstream).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubelite.agent import env as envmod
from kubelite.agent import handlers
from kubelite.agent.imagepull import PullFailure
from kubelite.agent.podstate import PodState
from kubelite.agent.podstatus import terminated_state
from kubelite.agent.restarts import backoff_event_message, crashloop_message, is_sidecar
from kubelite.agent.runtime.interface import ContainerState, Mount, SandboxError
from kubelite.agent.volumefiles import VolumeError
from kubelite.agent.volumes import container_mounts
from kubelite.images.api import ImageNotFound, InvalidImageName

if TYPE_CHECKING:
    from kubelite.agent.pods import PodManager

log = logging.getLogger(__name__)
Obj = dict[str, Any]
MIN_GRACE = 2  # upstream minimumGracePeriodInSeconds
RETRY = 10.0  # nominal seconds before a failed start is tried again (upstream's pod worker back-off)


def find_container(pod: Obj, name: str) -> Obj | None:
    spec = pod.get("spec") or {}
    return next((c for key in ("containers", "initContainers") for c in spec.get(key) or [] if c.get("name") == name),
                None)


def current_state(manager: PodManager, uid: str, name: str) -> ContainerState | None:
    rt = manager.runtime.pod_status(uid)
    if rt is None:
        return None
    return rt.containers.get(name) or rt.init_containers.get(name)


@dataclass
class ContainerOps:
    manager: PodManager

    @property
    def scale(self) -> float:
        return self.manager.scale

    def _event(self, pod: Obj, name: str) -> Callable[[str, str, str], None]:
        return lambda kind, reason, message: self.manager.record(pod, kind, reason, message, container=name)

    # ----- start -------------------------------------------------------------------------------

    async def start(self, pod: Obj, st: PodState, container: Obj, *, init: bool) -> float | None:
        """Start (or restart) the container unless something stops it; the real seconds after
        which to try again, or None."""
        name, uid = str(container.get("name")), st.uid
        if name in st.starting:
            return None
        state = current_state(self.manager, uid, name)
        if state is not None and state.state == "exited":
            wait = self._backoff(pod, st, name, state)
            if wait:
                return wait
        failure = await self.manager.images.ensure(uid, container, self._event(pod, name), pod=pod)
        if failure is not None:
            return self._failed(pod, st, name, failure)
        try:
            env, mounts = await self._config(pod, st, container)
        except (envmod.EnvError, VolumeError) as exc:
            return self._waiting(pod, st, name, "CreateContainerConfigError", str(exc), RETRY)
        if init and not is_sidecar(container):
            st.starting.add(name)
            task = asyncio.get_running_loop().create_task(self._run_init(pod, st, container, env, mounts),
                                                          name=f"init:{uid}/{name}")
            st.tasks.add(task)
            task.add_done_callback(st.tasks.discard)
            return None
        return await self.launch(pod, st, container, init=init, env=env, mounts=mounts)

    def _backoff(self, pod: Obj, st: PodState, name: str, state: ContainerState) -> float:
        key = f"{st.uid}/{name}"
        backoff = self.manager.backoff
        exited = st.exited_at.get(state.id, time.monotonic())
        remaining = backoff.remaining(key, exited)
        if remaining > 0:
            st.waiting[name] = ("CrashLoopBackOff", crashloop_message(backoff.get(key), name, pod))
            if state.id not in st.backoff_noted:
                st.backoff_noted.add(state.id)
                self.manager.record(pod, "Warning", "BackOff", backoff_event_message(name, pod), container=name)
            return remaining
        backoff.next(key, exited)
        st.last_terminated[name] = terminated_state(state, self.manager.runtime_name)
        return 0.0

    def _failed(self, pod: Obj, st: PodState, name: str, failure: PullFailure) -> float:
        st.waiting[name] = (failure.reason, failure.message)
        self.manager.record(pod, "Warning", "Failed", f"Error: {failure.reason}", container=name)
        return max(failure.retry * self.scale, 0.01)

    def _waiting(self, pod: Obj, st: PodState, name: str, reason: str, message: str, retry: float) -> float:
        st.waiting[name] = (reason, message)
        self.manager.record(pod, "Warning", "Failed", f"Error: {message}", container=name)
        return retry * self.scale

    async def _config(self, pod: Obj, st: PodState, container: Obj) -> tuple[list[tuple[str, str]], list[Mount]]:
        facts = self.manager.facts(pod)
        maps, secrets = envmod.references([container])
        sources = envmod.Sources()
        if maps or secrets:
            sources = await envmod.fetch_sources(self.manager.client, str(pod["metadata"].get("namespace") or ""),
                                                 maps, secrets)
        env, skipped = envmod.resolve_env(pod, container, sources, facts, services=await self.manager.reads.service_env(pod))
        if skipped:
            message = envmod.skipped_message(container, skipped)
            if st.note_once("InvalidEnvironmentVariableNames", message):
                self.manager.record(pod, "Warning", "InvalidEnvironmentVariableNames", message)
        mounts: list[Mount] = []
        if self.manager.volumes is not None and container.get("volumeMounts"):
            mounts = container_mounts(pod, container, st.volume_paths or {}, dict(env))
        return env, mounts

    async def _run_init(self, pod: Obj, st: PodState, container: Obj, env: Sequence[tuple[str, str]],
                        mounts: Sequence[Mount]) -> None:
        try:
            await self.launch(pod, st, container, init=True, env=env, mounts=mounts)
        except SandboxError as exc:  # the pod went away meanwhile
            log.debug("init container %s of %s: %s", container.get("name"), st.uid, exc)
        except Exception:
            log.exception("init container %s of pod %s", container.get("name"), st.uid)
        finally:
            st.starting.discard(str(container.get("name")))
            self.manager.resync(st.uid)

    async def launch(self, pod: Obj, st: PodState, container: Obj, *, init: bool, env: Sequence[tuple[str, str]],
                     mounts: Sequence[Mount]) -> float | None:
        name, uid = str(container.get("name")), st.uid
        try:
            state = await self.manager.runtime.start_container(uid, container, init=init, env=env, mounts=mounts)
        except SandboxError:
            raise
        except ImageNotFound:
            return self._failed(pod, st, name, self.manager.images.absent(uid, container, self._event(pod, name)))
        except InvalidImageName as exc:
            return self._waiting(pod, st, name, "InvalidImageName", str(exc), RETRY)
        except Exception as exc:  # a configuration the runtime cannot create
            # upstream's kubelet checks runAsNonRoot itself: a config error, not a runtime one
            reason = "CreateContainerConfigError" if "runAsNonRoot" in str(exc) else "CreateContainerError"
            return self._waiting(pod, st, name, reason, str(exc), RETRY)
        self.manager.record(pod, "Normal", "Created", f"Created container: {name}", container=name)
        st.started_at[state.id] = time.monotonic()
        if state.reason == "StartError":
            explain = getattr(self.manager.runtime, "container_message", None)
            message = state.message or (explain(uid, name) if explain else "") or \
                "the container process could not be started"
            self._waiting(pod, st, name, "RunContainerError", message, 0)
            return None
        self.manager.record(pod, "Normal", "Started", f"Started container {name}", container=name)
        st.waiting.pop(name, None)
        self.manager.probes.wake(uid)
        hook = (container.get("lifecycle") or {}).get("postStart")
        if hook and state.state == "running" and not (init and not is_sidecar(container)):
            await self._post_start(pod, st, container, hook)
        return None

    async def _post_start(self, pod: Obj, st: PodState, container: Obj, hook: Obj) -> None:
        name = str(container.get("name"))
        grace = grace_seconds(pod)
        message = await handlers.run_hook(self.manager.runtime, self.manager.probes.session, pod, container, hook,
                                          purpose="postStart", pod_ip=self.manager.pod_ip(st.uid),
                                          timeout=max(grace, MIN_GRACE))
        if message:
            self.manager.record(pod, "Warning", "FailedPostStartHook", message, container=name)
            await self.kill(pod, name, grace=grace, message="FailedPostStartHook")
            st.waiting[name] = ("PostStartHookError", message)

    # ----- stop --------------------------------------------------------------------------------

    async def kill(self, pod: Obj, name: str, *, grace: float, message: str, run_hook: bool = True) -> None:
        """Stop the container if it runs: preStop hook, then the runtime's stop."""
        uid = str(pod["metadata"]["uid"])
        state = current_state(self.manager, uid, name)
        if state is None or state.state != "running":
            return
        self.manager.record(pod, "Normal", "Killing", message, container=name)
        container = find_container(pod, name) or {}
        hook = (container.get("lifecycle") or {}).get("preStop")
        left = grace
        if hook and run_hook and grace > 0:
            began = time.monotonic()
            failure = await handlers.run_hook(self.manager.runtime, self.manager.probes.session, pod, container,
                                              hook, purpose="preStop", pod_ip=self.manager.pod_ip(uid), timeout=grace)
            if failure:
                self.manager.record(pod, "Warning", "FailedPreStopHook", failure, container=name)
            left = grace - (time.monotonic() - began)
        seconds = max(MIN_GRACE, math.ceil(left)) if grace > 0 else 0
        await self.manager.runtime.stop_container(uid, name, grace_seconds=seconds)


def grace_seconds(pod: Obj, *, probe: Obj | None = None) -> int:
    """The grace period for stopping the pod's containers: deletionGracePeriodSeconds while it is
    being deleted, a failed probe's own terminationGracePeriodSeconds, else the pod's."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if meta.get("deletionGracePeriodSeconds") is not None:
        return int(meta["deletionGracePeriodSeconds"])
    if probe is not None and probe.get("terminationGracePeriodSeconds") is not None:
        return int(probe["terminationGracePeriodSeconds"])
    value = spec.get("terminationGracePeriodSeconds")
    return int(value) if value is not None else 30

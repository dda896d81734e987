"""The hollow runtime: containers "run" the instant they start; no processes, no namespaces, no
images. Pods still get real-looking state: sandbox addresses from the node's podCIDR
(host-local style), container IDs, image references normalised as a registry would, start and
finish times, restart counts. Init containers complete at once; sidecars (init containers with
restartPolicy Always) keep running; stopping is instant and exits 0.

Tests script behaviour per container (`script`): an instance can exit by itself after a delay
with an exit code (or be OOM-killed, or fail to start), take its time to stop (and be SIGKILLed
past the grace period), and answer probes and lifecycle hooks (`scripted_handler`) with a
sequence of results. The n-th behaviour given applies to the n-th instance (restart count n),
the last one to all later instances. Unscripted containers behave as above and pass every probe.
A self-exit calls `on_container_exit(uid, name)`, as the runc runtime does.

Not modelled: image pulls, resource limits; env and mounts the kubelet passes are only kept
(`configs`) so tests can look at them.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubelite.agent.clock import now_rfc3339
from kubelite.agent.ipam import HostLocalIpam, RangeFull
from kubelite.agent.runtime.fake_streaming import FakeStreaming
from kubelite.agent.runtime.interface import (
    ContainerState,
    ExitCallback,
    Mount,
    PodRuntimeStatus,
    RuntimeVersion,
    Sandbox,
    SandboxError,
)

Obj = dict[str, Any]
VERSION = RuntimeVersion("fake", "1.0")
OOM_EXIT, KILL_EXIT, START_ERROR_EXIT = 137, 137, 128


def normalize_image(image: str) -> str:
    """`nginx` → `docker.io/library/nginx:latest`, as a registry-backed runtime reports it."""
    name, at, digest = image.partition("@")
    first, slash, rest = name.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}" if slash else f"docker.io/library/{name}"
    if not at and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if at else name


def image_id(image: str) -> str:
    """`repository@sha256:…` for a normalised image: its digest, or a made-up one for a tag."""
    name, at, digest = image.partition("@")
    if not at:
        digest = "sha256:" + hashlib.sha256(image.encode()).hexdigest()
    head, slash, last = name.rpartition("/")
    repository = f"{head}{slash}{last.split(':', 1)[0]}"
    return f"{repository}@{digest}"


@dataclass(frozen=True)
class Behaviour:
    """How one instance of a scripted hollow container behaves."""

    exit_after: float | None = None  # seconds until it exits by itself (None: runs until stopped)
    exit_code: int = 0
    oom: bool = False  # exits as OOMKilled (137) after exit_after
    start_error: str = ""  # cannot start: exited at once, reason StartError, exit code 128
    stop_delay: float = 0.0  # seconds SIGTERM takes to end it; past the grace period: SIGKILL (137)
    stop_exit_code: int = 0  # its exit code when SIGTERM ends it
    liveness: Sequence[bool] = ()  # probe results in turn, the last repeats; empty: success
    readiness: Sequence[bool] = ()
    startup: Sequence[bool] = ()
    post_start: bool = True  # whether its postStart hook succeeds
    pre_stop_delay: float = 0.0  # seconds its preStop hook takes


@dataclass
class _Instance:
    behaviour: Behaviour
    probes: dict[str, int] = field(default_factory=dict)  # kind -> results consumed
    timer: asyncio.TimerHandle | None = None


class FakeRuntime(FakeStreaming):  # logs/exec/attach/port-forward: see fake_streaming
    def __init__(self, node_name: str = "") -> None:
        self.node_name = node_name
        self.pods: dict[str, PodRuntimeStatus] = {}
        self.ipam: HostLocalIpam | None = None
        self.on_container_exit: ExitCallback | None = None
        self.configs: dict[tuple[str, str], tuple[list[tuple[str, str]] | None, list[Mount]]] = {}
        self.history: list[tuple[float, str, str, str]] | None = None  # (monotonic, what, uid, name) if enabled
        self._scripts: dict[tuple[str, str], tuple[Behaviour, ...]] = {}  # (pod name or "", container)
        self._instances: dict[str, _Instance] = {}  # container id -> its behaviour
        self._pod_names: dict[str, str] = {}
        self._serial = 0

    # ----- scripting -----------------------------------------------------------------------------

    def script(self, container: str, *behaviours: Behaviour, pod: str = "") -> None:
        """Script container `container` (of pods named `pod`, or of any pod)."""
        self._scripts[(pod, container)] = behaviours or (Behaviour(),)

    def _behaviour(self, uid: str, name: str, restart: int) -> Behaviour:
        script = self._scripts.get((self._pod_names.get(uid, ""), name)) or self._scripts.get(("", name))
        if not script:
            return Behaviour()
        return script[min(restart, len(script) - 1)]

    def _note(self, what: str, uid: str, name: str) -> None:
        if self.history is not None:
            self.history.append((time.monotonic(), what, uid, name))

    async def scripted_handler(self, pod_uid: str, container: str, purpose: str) -> tuple[bool, str] | None:
        """The result of a probe ("liveness", "readiness", "startup") or hook ("postStart",
        "preStop") of the container's current instance, instead of running it."""
        status = self.pods.get(pod_uid)
        state = (status.containers.get(container) or status.init_containers.get(container)) if status else None
        instance = self._instances.get(state.id) if state else None
        behaviour = instance.behaviour if instance else Behaviour()
        self._note(purpose, pod_uid, container)
        if purpose == "preStop":
            await asyncio.sleep(behaviour.pre_stop_delay)
            return True, ""
        if purpose == "postStart":
            return behaviour.post_start, "" if behaviour.post_start else "scripted postStart failure"
        results: Sequence[bool] = getattr(behaviour, purpose, ())
        if not results or instance is None:
            return True, ""
        index = instance.probes.get(purpose, 0)
        instance.probes[purpose] = index + 1
        ok = results[min(index, len(results) - 1)]
        return ok, "" if ok else f"scripted {purpose} failure"

    # ----- node ----------------------------------------------------------------------------------

    def version(self) -> RuntimeVersion:
        return VERSION

    def readiness(self) -> tuple[bool, bool, str]:
        return True, True, ""

    def update_pod_cidr(self, cidr: str) -> None:
        if not cidr or (self.ipam is not None and self.ipam.cidr == cidr):
            return
        self.ipam = HostLocalIpam(cidr)
        for uid, pod in self.pods.items():
            if not pod.sandbox.host_network and pod.sandbox.ips:
                self.ipam.reserve(pod.sandbox.ips[0], uid)

    def _new_id(self, *parts: str) -> str:
        self._serial += 1
        return hashlib.sha256(f"{self.node_name}/{'/'.join(parts)}/{self._serial}".encode()).hexdigest()

    # ----- sandboxes -----------------------------------------------------------------------------

    async def create_sandbox(self, pod: Obj, *, host_ip: str) -> Sandbox:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid = meta["uid"]
        existing = self.pods.get(uid)
        if existing is not None:
            return existing.sandbox
        host_network = bool(spec.get("hostNetwork"))
        if host_network:
            ips: tuple[str, ...] = (host_ip,)
        elif self.ipam is None:
            raise SandboxError(f"node {self.node_name} has no pod CIDR assigned yet")
        else:
            ips = (self._address_for(pod),)
        sandbox = Sandbox(self._new_id(uid, "sandbox"), uid, ips, now_rfc3339(), host_network)
        self.pods[uid] = PodRuntimeStatus(sandbox)
        self._pod_names[uid] = str(meta.get("name") or "")
        self.sandbox_created(pod)
        return sandbox

    def _address_for(self, pod: Obj) -> str:
        """A fresh address, or the one the API says the pod had (its sandbox "survived" a restart
        of this process, as real containers survive a kubelet restart)."""
        assert self.ipam is not None
        uid = pod["metadata"]["uid"]
        previous = str((pod.get("status") or {}).get("podIP") or "")
        if previous and self.ipam.reserve(previous, uid):
            return previous
        try:
            return self.ipam.allocate(uid)
        except RangeFull as exc:
            raise SandboxError(str(exc)) from None

    async def remove_sandbox(self, pod_uid: str) -> None:
        status = self.pods.pop(pod_uid, None)
        if status is not None:
            for state in [*status.containers.values(), *status.init_containers.values()]:
                self._forget(state.id)
            if self.ipam is not None:
                self.ipam.release(pod_uid)
        self._pod_names.pop(pod_uid, None)
        for key in [k for k in self.configs if k[0] == pod_uid]:
            del self.configs[key]
        await self.sandbox_removed(pod_uid)

    def pod_status(self, pod_uid: str) -> PodRuntimeStatus | None:
        return self.pods.get(pod_uid)

    def pod_uids(self) -> list[str]:
        return list(self.pods)

    def _pod(self, pod_uid: str) -> PodRuntimeStatus:
        pod = self.pods.get(pod_uid)
        if pod is None:
            raise SandboxError(f"pod {pod_uid} has no sandbox")
        return pod

    # ----- containers ----------------------------------------------------------------------------

    async def start_container(self, pod_uid: str, container: Obj, *, init: bool = False,
                              env: Sequence[tuple[str, str]] | None = None,
                              mounts: Sequence[Mount] = ()) -> ContainerState:
        pod = self._pod(pod_uid)
        table = pod.init_containers if init else pod.containers
        name = str(container["name"])
        current = table.get(name)
        if current is not None and current.state == "running":
            return current
        restart = current.restart_count + 1 if current is not None else 0
        if current is not None:
            self._forget(current.id)
        image = normalize_image(str(container.get("image") or ""))
        behaviour = self._behaviour(pod_uid, name, restart)
        state = ContainerState(name, self._new_id(pod_uid, name), image, image_id(image), "running", now_rfc3339(),
                               restart_count=restart)
        table[name] = state
        self._instances[state.id] = _Instance(behaviour)
        if env or mounts:
            self.configs[(pod_uid, name)] = (list(env) if env is not None else None, list(mounts))
        self._note("start", pod_uid, name)
        if behaviour.start_error:
            self._exited(state, START_ERROR_EXIT, "StartError", behaviour.start_error)
            return state
        self.container_started(pod_uid, container, image)
        if init and container.get("restartPolicy") != "Always":
            await asyncio.sleep(behaviour.exit_after or 0)  # an init container runs to completion
            if state.state == "running":
                self._finish(pod_uid, state, behaviour, notify=False)
        elif behaviour.exit_after is not None:
            self._instances[state.id].timer = asyncio.get_running_loop().call_later(
                behaviour.exit_after, self._finish, pod_uid, state, behaviour)
        return state

    def _finish(self, pod_uid: str, state: ContainerState, behaviour: Behaviour, notify: bool = True) -> None:
        """The instance exits by itself as scripted (if it still runs)."""
        if state.state != "running":
            return
        code = OOM_EXIT if behaviour.oom else behaviour.exit_code
        self._exited(state, code, "OOMKilled" if behaviour.oom else ("Completed" if code == 0 else "Error"))
        self.container_stopped(pod_uid, state.name, code)
        self._note("exit", pod_uid, state.name)
        if notify and self.on_container_exit is not None:
            self.on_container_exit(pod_uid, state.name)

    @staticmethod
    def _exited(state: ContainerState, code: int, reason: str, message: str = "") -> None:
        state.state, state.finished_at, state.exit_code, state.reason = "exited", now_rfc3339(), code, reason
        state.message = message

    async def stop_container(self, pod_uid: str, name: str, *, grace_seconds: int) -> ContainerState:
        pod = self._pod(pod_uid)
        state = pod.containers.get(name) or pod.init_containers.get(name)
        if state is None:
            raise KeyError(f"no container {name} in pod {pod_uid}")
        if state.state != "running":
            return state
        instance = self._instances.get(state.id)
        behaviour = instance.behaviour if instance else Behaviour()
        if instance is not None and instance.timer is not None:
            instance.timer.cancel()
        self._note("stop", pod_uid, name)
        killed = behaviour.stop_delay > grace_seconds
        delay = min(behaviour.stop_delay, float(grace_seconds))
        if delay > 0:
            await asyncio.sleep(delay)
        if state.state == "running":
            code = KILL_EXIT if killed else behaviour.stop_exit_code
            self._exited(state, code, "Completed" if code == 0 else "Error")
            self.container_stopped(pod_uid, name, code)
            self._note("stopped", pod_uid, name)
        return state

    def _forget(self, container_id: str) -> None:
        instance = self._instances.pop(container_id, None)
        if instance is not None and instance.timer is not None:
            instance.timer.cancel()

"""The hollow runtime: containers "run" the instant they start and never exit; no processes, no
namespaces, no images. Pods still get real-looking state: sandbox addresses from the node's
podCIDR (host-local style), container IDs, image references normalised as a registry would, start
and finish times. Init containers complete at once; sidecars (init containers with
restartPolicy Always) keep running.

Not modelled: containers that exit by themselves (so restartPolicy Never/OnFailure pods never
complete), probes failing, image pulls, resource limits. Stopping honours no grace period because
nothing needs one: a hollow container stops at once.
"""

from __future__ import annotations

import hashlib
from typing import Any

from kubelite.agent.clock import now_rfc3339
from kubelite.agent.ipam import HostLocalIpam, RangeFull
from kubelite.agent.runtime.fake_streaming import FakeStreaming
from kubelite.agent.runtime.interface import (
    ContainerState,
    PodRuntimeStatus,
    RuntimeVersion,
    Sandbox,
    SandboxError,
)

Obj = dict[str, Any]
VERSION = RuntimeVersion("fake", "1.0")


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


class FakeRuntime(FakeStreaming):  # logs/exec/attach/port-forward: see fake_streaming
    def __init__(self, node_name: str = "") -> None:
        self.node_name = node_name
        self.pods: dict[str, PodRuntimeStatus] = {}
        self.ipam: HostLocalIpam | None = None
        self._serial = 0

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

    async def start_container(self, pod_uid: str, container: Obj, *, init: bool = False) -> ContainerState:
        pod = self._pod(pod_uid)
        table = pod.init_containers if init else pod.containers
        name = str(container["name"])
        current = table.get(name)
        if current is not None and current.state != "created":
            return current
        image = normalize_image(str(container.get("image") or ""))
        now = now_rfc3339()
        state = ContainerState(name, self._new_id(pod_uid, name), image, image_id(image), "running", now)
        if init and container.get("restartPolicy") != "Always":
            state.state, state.finished_at, state.exit_code, state.reason = "exited", now, 0, "Completed"
        table[name] = state
        self.container_started(pod_uid, container, image)
        return state

    async def stop_container(self, pod_uid: str, name: str, *, grace_seconds: int) -> ContainerState:
        pod = self._pod(pod_uid)
        state = pod.containers.get(name) or pod.init_containers.get(name)
        if state is None:
            raise KeyError(f"no container {name} in pod {pod_uid}")
        if state.state == "running":
            state.state, state.finished_at, state.exit_code, state.reason = "exited", now_rfc3339(), 0, "Completed"
            self.container_stopped(pod_uid, name, 0)
        return state

    async def remove_sandbox(self, pod_uid: str) -> None:
        if self.pods.pop(pod_uid, None) is not None and self.ipam is not None:
            self.ipam.release(pod_uid)
        await self.sandbox_removed(pod_uid)

    def pod_status(self, pod_uid: str) -> PodRuntimeStatus | None:
        return self.pods.get(pod_uid)

    def _pod(self, pod_uid: str) -> PodRuntimeStatus:
        pod = self.pods.get(pod_uid)
        if pod is None:
            raise SandboxError(f"pod {pod_uid} has no sandbox")
        return pod

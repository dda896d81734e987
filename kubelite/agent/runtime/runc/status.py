"""The runtime's records as the kubelet sees them (interface.py's Sandbox, ContainerState,
PodRuntimeStatus), and the imageID a container reports (`repository@digest`). Pure."""

from __future__ import annotations

from typing import cast

from kubelite.agent.runtime.interface import ContainerState, PodRuntimeStatus, Sandbox, State
from kubelite.agent.runtime.runc.state import ContainerRecord, SandboxRecord
from kubelite.images.api import ImageRecord


def image_id(image: ImageRecord) -> str:
    """`docker.io/library/busybox@sha256:…` for `docker.io/library/busybox:latest` (as containerd
    reports a repo digest)."""
    name = image.reference.split("@", 1)[0]
    head, slash, last = name.rpartition("/")
    return f"{head}{slash}{last.split(':', 1)[0]}@{image.digest}"


def container_state(c: ContainerRecord) -> ContainerState:
    return ContainerState(name=c.name, id=c.id, image=c.image, image_id=c.image_id, state=cast(State, c.state),
                          started_at=c.started_at, finished_at=c.finished_at, exit_code=c.exit_code,
                          reason=c.reason, restart_count=c.restart_count)


def runtime_status(rec: SandboxRecord) -> PodRuntimeStatus:
    sandbox = Sandbox(rec.id, rec.uid, tuple(rec.ips), rec.created_at, rec.host_network)
    return PodRuntimeStatus(sandbox,
                            init_containers={n: container_state(c) for n, c in rec.init_containers.items()},
                            containers={n: container_state(c) for n, c in rec.containers.items()})

"""The runtime interface a kubelet drives, modelled on the CRI: a pod sandbox (network namespace
and addresses) holding containers that are started and stopped one by one.

The kubelet never looks inside a runtime: it asks for a sandbox, starts the pod's containers in
it (with the environment and volume mounts it resolved), stops them with a grace period and asks
for their state, which it turns into pod status. A runtime reports containers that exit by
themselves through `on_container_exit`, and after an agent restart tells which pods it still holds
(`pod_uids`). `runtime/fake.py` implements it without processes (hollow nodes), `runtime/runc`
with real containers. All methods are idempotent where the CRI's are: starting a container that
runs, or stopping one that stopped, returns its current state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Obj = dict[str, Any]
State = Literal["created", "running", "exited"]


class SandboxError(Exception):
    """The sandbox cannot be created now (no pod CIDR yet, addresses exhausted); retried later."""


@dataclass(frozen=True)
class RuntimeVersion:
    name: str  # "fake", "runc"
    version: str

    def __str__(self) -> str:
        return f"{self.name}://{self.version}"


@dataclass
class Sandbox:
    id: str
    pod_uid: str
    ips: tuple[str, ...]
    created_at: str  # RFC 3339
    host_network: bool = False


@dataclass(frozen=True)
class Mount:
    """A host path the kubelet prepared (a volume) and where it appears in a container. Used by
    runtimes that run real containers (runc); `propagation` is the volumeMount's mountPropagation."""

    host_path: str
    container_path: str
    read_only: bool = False
    propagation: Literal["None", "HostToContainer", "Bidirectional"] = "None"


@dataclass
class ContainerState:
    name: str
    id: str
    image: str
    image_id: str
    state: State = "created"
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    reason: str = ""
    restart_count: int = 0
    message: str = ""  # why it ended, when the runtime knows more than the exit code (a StartError)


@dataclass
class PodRuntimeStatus:
    sandbox: Sandbox
    init_containers: dict[str, ContainerState] = field(default_factory=dict)
    containers: dict[str, ContainerState] = field(default_factory=dict)


ExitCallback = Callable[[str, str], None]  # (pod uid, container name)


class ContainerRuntime(Protocol):
    # Called when a container exits by itself (PLEG-style), so the kubelet syncs the pod at once.
    on_container_exit: ExitCallback | None

    def version(self) -> RuntimeVersion: ...

    def readiness(self) -> tuple[bool, bool, str]:
        """(runtime ready, network ready, message when not)."""
        ...

    def update_pod_cidr(self, cidr: str) -> None:
        """The node's podCIDR as the API assigned it (CRI UpdateRuntimeConfig)."""
        ...

    async def create_sandbox(self, pod: Obj, *, host_ip: str) -> Sandbox:
        """Create (or return the existing) sandbox of `pod`; raises SandboxError when it cannot yet."""
        ...

    async def start_container(self, pod_uid: str, container: Obj, *, init: bool = False,
                              env: Sequence[tuple[str, str]] | None = None,
                              mounts: Sequence[Mount] = ()) -> ContainerState:
        """Create and start `container` (a pod spec container) in the pod's sandbox; if its current
        instance exited, start a new one with restart_count + 1. An init container that is not a
        sidecar runs to completion before this returns. `env`: the environment the kubelet resolved
        (None: the literal values of `container.env`); `mounts`: its volumes as the kubelet
        prepared them. Raises the image store's ImageNotFound / InvalidImageName, or another
        exception for a configuration that cannot be created (CreateContainerError)."""
        ...

    async def stop_container(self, pod_uid: str, name: str, *, grace_seconds: int) -> ContainerState:
        """SIGTERM, then SIGKILL after `grace_seconds`; returns the exited state."""
        ...

    async def remove_sandbox(self, pod_uid: str) -> None:
        """Stop whatever still runs, release the sandbox's addresses, forget the pod."""
        ...

    def pod_status(self, pod_uid: str) -> PodRuntimeStatus | None: ...

    def pod_uids(self) -> list[str]:
        """Every pod the runtime holds a sandbox for (after an agent restart: what it recovered)."""
        ...

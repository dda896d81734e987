"""Which pod (and runtime) a streaming request addresses, and the errors the kubelet gives when
there is none.

The server asks a `PodSource` for `namespace/name` (plus the UID when the API server sends one,
so a request never reaches a newer pod of the same name). `KubeletPods` answers from the pods the
node's kubelets are working on; any object with `find` will do (tests use a dict).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from kubelite.agent.runtime.streaming import StreamingRuntime
from kubelite.objects.errors import BadRequest, NotFound

if TYPE_CHECKING:
    from kubelite.agent.kubelet import Kubelet

Obj = dict[str, Any]
STREAMING_METHODS = ("log_path", "exec", "attach", "port_forward")


@dataclass(frozen=True)
class Target:
    pod: Obj
    runtime: StreamingRuntime

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"].get("uid") or "")

    @property
    def name(self) -> str:
        return str(self.pod["metadata"].get("name") or "")


class PodSource(Protocol):
    def find(self, namespace: str, name: str, uid: str | None = None) -> Target | None: ...


def streaming_runtime(runtime: object) -> StreamingRuntime | None:
    """The runtime as a StreamingRuntime, or None if it cannot stream."""
    if all(callable(getattr(runtime, m, None)) for m in STREAMING_METHODS):
        return cast(StreamingRuntime, runtime)
    return None


def _matches(pod: Obj | None, namespace: str, name: str, uid: str | None) -> bool:
    meta = (pod or {}).get("metadata") or {}
    return meta.get("namespace") == namespace and meta.get("name") == name and (not uid or meta.get("uid") == uid)


class KubeletPods:
    """The pods of one or more kubelets (one agent, or a host of hollow nodes)."""

    def __init__(self, kubelets: Callable[[], Iterable[Kubelet]]) -> None:
        self._kubelets = kubelets

    def find(self, namespace: str, name: str, uid: str | None = None) -> Target | None:
        for kubelet in self._kubelets():
            runtime = streaming_runtime(kubelet.runtime)
            workers = kubelet.pods.workers
            for pod_uid in workers.known():
                pod = workers.pod(pod_uid)
                if runtime is not None and pod is not None and _matches(pod, namespace, name, uid):
                    return Target(pod, runtime)
        return None


def find_pod(source: PodSource, namespace: str, name: str, uid: str | None = None) -> Target:
    target = source.find(namespace, name, uid or None)
    if target is None:
        raise NotFound(f'pod "{name}" does not exist', details={"name": name, "kind": "pods"})
    return target


def container_names(pod: Obj) -> list[str]:
    spec = pod.get("spec") or {}
    return [str(c.get("name")) for key in ("containers", "initContainers", "ephemeralContainers")
            for c in spec.get(key) or []]


def check_container(target: Target, container: str) -> str:
    if container not in container_names(target.pod):
        raise NotFound(f'container "{container}" not found in pod "{target.name}"',
                       details={"name": target.name, "kind": "pods"})
    return container


def container_running(target: Target, container: str) -> bool:
    """Whether the runtime runs the container now (a runtime that cannot say is trusted to)."""
    pod_status = getattr(target.runtime, "pod_status", None)
    if not callable(pod_status):
        return True
    status = pod_status(target.uid)
    if status is None:
        return False
    state = status.containers.get(container) or status.init_containers.get(container)
    return state is not None and state.state == "running"


def check_running(target: Target, container: str) -> None:
    """exec/attach need a running container; the kubelet's 404 otherwise (kubectl shows it as
    `unable to upgrade connection: container not found ("app")`)."""
    if not container_running(target, container):
        raise NotFound(f'container not found ("{container}")', details={"name": container, "kind": "containers"})


def container_status(pod: Obj, container: str) -> Obj:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(key) or []:
            if entry.get("name") == container:
                return dict(entry)
    return {}


def log_unavailable(pod: Obj, container: str) -> BadRequest:
    """Why a container has no log yet (upstream's validateContainerLogStatus wording)."""
    name = str((pod.get("metadata") or {}).get("name"))
    waiting = (container_status(pod, container).get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason") or "ContainerCreating"
    return BadRequest(f'container "{container}" in pod "{name}" is waiting to start: {reason}')


def no_previous(pod: Obj, container: str) -> BadRequest:
    name = str((pod.get("metadata") or {}).get("name"))
    return BadRequest(f'previous terminated container "{container}" in pod "{name}" not found')

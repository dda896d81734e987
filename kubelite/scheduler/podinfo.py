"""What the scheduler needs to know about a pod, computed once per pod (upstream's PodInfo plus the
PreFilter state of its plugins): resource requests, host ports, tolerations, compiled node affinity
and the controlling owner.

Resource units are integers as upstream keeps them: `cpu` in millicores, every other resource
(memory, ephemeral-storage, pods, extended resources, hugepages) in whole units, both rounded up.
Requests follow upstream's `PodRequests`: the sum of the app containers and restartable (sidecar)
init containers, raised to the largest regular init container (plus the sidecars started before
it), plus the pod overhead. `non_zero_cpu`/`non_zero_memory` are the same sums with upstream's
scoring defaults (100m, 200Mi) for containers that request nothing, so best-effort pods still
spread.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

from kubelite.objects.validation.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]
Resources = dict[str, int]

DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
DEFAULT_SCHEDULER = "default-scheduler"
BIND_ALL = "0.0.0.0"


@functools.lru_cache(maxsize=8192)
def _quantity(name: str, text: Any) -> int:
    try:
        value = parse_quantity(text).value
    except QuantityError:
        return 0
    return math.ceil(value * 1000) if name == "cpu" else math.ceil(value)


def quantity(name: str, text: Any) -> int:
    """`text` as an integer in the scheduler's unit for resource `name` (0 if unparseable)."""
    return _quantity(name, text) if isinstance(text, str | int | float) else 0


def resource_list(values: Any) -> Resources:
    if not isinstance(values, dict):
        return {}
    return {name: quantity(name, text) for name, text in values.items()}


def _add(into: Resources, more: Resources) -> None:
    for name, value in more.items():
        into[name] = into.get(name, 0) + value


def _raise_to(into: Resources, other: Resources) -> None:
    for name, value in other.items():
        if value > into.get(name, 0):
            into[name] = value


def _container_requests(container: Obj, *, non_zero: bool) -> Resources:
    requests = resource_list((container.get("resources") or {}).get("requests"))
    if non_zero:
        requests = {"cpu": requests.get("cpu", DEFAULT_MILLI_CPU_REQUEST),
                    "memory": requests.get("memory", DEFAULT_MEMORY_REQUEST)}
    return requests


def pod_requests(spec: Obj, *, non_zero: bool = False) -> Resources:
    """Upstream's PodRequests (or its non-zero variant for cpu/memory scoring)."""
    total: Resources = {}
    for container in spec.get("containers") or []:
        _add(total, _container_requests(container, non_zero=non_zero))
    sidecars: Resources = {}
    init_peak: Resources = {}
    for container in spec.get("initContainers") or []:
        requests = _container_requests(container, non_zero=non_zero)
        if container.get("restartPolicy") == "Always":
            _add(total, requests)
            _add(sidecars, requests)
        else:
            running = dict(sidecars)
            _add(running, requests)
            _raise_to(init_peak, running)
    _raise_to(total, init_peak)
    pod_level = resource_list((spec.get("resources") or {}).get("requests"))
    total.update({k: v for k, v in pod_level.items() if k in ("cpu", "memory")})
    if not non_zero:
        _add(total, resource_list(spec.get("overhead")))
    return {name: value for name, value in total.items() if value or non_zero}


def host_ports(spec: Obj) -> tuple[tuple[str, str, int], ...]:
    """(hostIP, protocol, hostPort) of every container port that claims a host port."""
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    ports = []
    for container in containers:
        for port in container.get("ports") or []:
            host_port = port.get("hostPort") or 0
            if isinstance(host_port, int) and host_port > 0:
                ports.append((port.get("hostIP") or BIND_ALL, port.get("protocol") or "TCP", host_port))
    return tuple(ports)


def controller_uid(meta: Obj) -> str:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid") or f"{ref.get('kind')}/{ref.get('name')}")
    return ""


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str
    value: str
    effect: str

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        if self.effect and self.effect != effect:
            return False
        if self.key and self.key != key:
            return False
        if self.operator == "Exists":
            return True
        return self.operator in ("", "Equal") and self.value == value


def tolerations(spec: Obj) -> tuple[Toleration, ...]:
    return tuple(Toleration(str(t.get("key") or ""), str(t.get("operator") or ""), str(t.get("value") or ""),
                            str(t.get("effect") or "")) for t in spec.get("tolerations") or [])


@dataclass(slots=True)
class PodInfo:
    """A pending or placed pod as the scheduler sees it; built by `PodInfo.of(pod)`."""

    key: str
    pod: Obj
    uid: str
    priority: int
    requests: Resources
    cpu: int  # requests["cpu"] and ["memory"], read on every node by the resource scorers
    memory: int
    non_zero_cpu: int
    non_zero_memory: int
    ports: tuple[tuple[str, str, int], ...]
    tolerations: tuple[Toleration, ...]
    node_selector: dict[str, str]
    affinity: Obj | None  # spec.affinity.nodeAffinity as sent; the NodeAffinity plugin compiles it
    owner: str
    node_name: str
    preemption_policy: str
    extra: dict[str, Any] = field(default_factory=dict)  # per-pod plugin state (PreFilter results)

    @classmethod
    def of(cls, pod: Obj) -> PodInfo:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        namespace = meta.get("namespace") or ""
        non_zero, requests = pod_requests(spec, non_zero=True), pod_requests(spec)
        return cls(key=f"{namespace}/{meta.get('name')}", pod=pod, uid=str(meta.get("uid") or ""),
                   priority=int(spec.get("priority") or 0), requests=requests,
                   cpu=requests.get("cpu", 0), memory=requests.get("memory", 0),
                   non_zero_cpu=non_zero.get("cpu", 0), non_zero_memory=non_zero.get("memory", 0),
                   ports=host_ports(spec),
                   tolerations=tolerations(spec), node_selector=dict(spec.get("nodeSelector") or {}),
                   affinity=(spec.get("affinity") or {}).get("nodeAffinity"), owner=controller_uid(meta),
                   node_name=str(spec.get("nodeName") or ""),
                   preemption_policy=str(spec.get("preemptionPolicy") or "PreemptLowerPriority"))


def pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name')}"


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def responsible_for(pod: Obj) -> bool:
    """Pods this scheduler places: its schedulerName (or none), not yet bound."""
    spec = pod.get("spec") or {}
    return not spec.get("nodeName") and (spec.get("schedulerName") or DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER

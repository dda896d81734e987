"""The Node a kubelet registers and the status it reports, built purely from its `NodeConfig`, the
runtime's readiness and the status the API holds now.

Conditions follow upstream's kubelet: MemoryPressure, DiskPressure, PIDPressure (all False, a
hollow node never runs short) and Ready, with upstream's reasons and messages. A condition keeps
its lastTransitionTime while its status stays the same; lastHeartbeatTime is the report time.
`status_changed` ignores heartbeats, so a kubelet posts its status when something changed or when
the report frequency has passed, never more often (upstream's nodeStatusReportFrequency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubelite.agent.config import NodeConfig
from kubelite.objects.validation.quantity import parse_quantity

Obj = dict[str, Any]

CONDITION_ORDER = ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
EVICTION_HARD_MEMORY = 100 * 1024 * 1024  # upstream's memory.available<100Mi
EVICTION_HARD_NODEFS = 0.10  # upstream's nodefs.available<10%
_PRESSURE = {
    "MemoryPressure": ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    "DiskPressure": ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    "PIDPressure": ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
}


@dataclass(frozen=True)
class Readiness:
    """What the runtime says about itself; a node is Ready only when both are."""

    runtime_ready: bool = True
    network_ready: bool = True
    message: str = ""

    @property
    def ready(self) -> bool:
        return self.runtime_ready and self.network_ready


def _bytes(quantity: str) -> int:
    return int(parse_quantity(quantity).value)


def resources(cfg: NodeConfig) -> tuple[Obj, Obj]:
    """(capacity, allocatable) as the kubelet reports them: memory in Ki, less the hard eviction
    threshold in allocatable; ephemeral storage less the nodefs threshold."""
    memory, storage = _bytes(cfg.memory), _bytes(cfg.ephemeral_storage)
    capacity = {"cpu": cfg.cpu, "memory": f"{memory // 1024}Ki", "pods": str(cfg.pods),
                "ephemeral-storage": f"{storage // 1024}Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0"}
    allocatable = dict(capacity)
    allocatable["memory"] = f"{max(0, memory - EVICTION_HARD_MEMORY) // 1024}Ki"
    allocatable["ephemeral-storage"] = str(int(storage * (1 - EVICTION_HARD_NODEFS)))
    return capacity, allocatable


def labels(cfg: NodeConfig) -> dict[str, str]:
    base = {"kubernetes.io/hostname": cfg.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": cfg.arch,
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": cfg.arch}
    return {**base, **dict(cfg.labels)}


def _wanted_conditions(readiness: Readiness) -> list[tuple[str, str, str, str]]:
    wanted = [(kind, "False", *_PRESSURE[kind]) for kind in CONDITION_ORDER[:3]]
    if readiness.ready:
        wanted.append(("Ready", "True", "KubeletReady", "kubelet is posting ready status"))
    else:
        wanted.append(("Ready", "False", "KubeletNotReady", readiness.message or "container runtime is down"))
    return wanted


def conditions(readiness: Readiness, current: list[Obj], now: str) -> list[Obj]:
    """The kubelet's conditions, keeping each transition time while its status holds."""
    previous = {c.get("type"): c for c in current if isinstance(c, dict)}
    result = []
    for kind, status, reason, message in _wanted_conditions(readiness):
        before = previous.get(kind) or {}
        transition = before.get("lastTransitionTime") if before.get("status") == status else None
        result.append({"type": kind, "status": status, "lastHeartbeatTime": now,
                       "lastTransitionTime": transition or now, "reason": reason, "message": message})
    return result


def node_status(cfg: NodeConfig, runtime_version: str, readiness: Readiness, *, current: Obj | None,
                now: str) -> Obj:
    capacity, allocatable = resources(cfg)
    current_conditions = list((current or {}).get("conditions") or [])
    machine = cfg.machine_id()
    return {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": conditions(readiness, current_conditions, now),
        "addresses": [{"type": "InternalIP", "address": cfg.internal_ip}, {"type": "Hostname", "address": cfg.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.kubelet_port}},
        "nodeInfo": {"machineID": machine, "systemUUID": cfg.system_uuid(), "bootID": cfg.boot_id,
                     "kernelVersion": cfg.kernel_version, "osImage": cfg.os_image,
                     "containerRuntimeVersion": runtime_version, "kubeletVersion": cfg.kubelet_version,
                     "operatingSystem": "linux", "architecture": cfg.arch},
    }


def node_object(cfg: NodeConfig, runtime_version: str, readiness: Readiness, *, now: str) -> Obj:
    """The Node to register: upstream's initialNode, status included (the API keeps it on create)."""
    spec: Obj = {}
    if cfg.taints:
        spec["taints"] = [{"key": k, "value": v, "effect": e} if v else {"key": k, "effect": e}
                          for k, v, e in cfg.taints]
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": cfg.name, "labels": labels(cfg),
                     "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": spec,
        "status": node_status(cfg, runtime_version, readiness, current=None, now=now),
    }


def _without_heartbeats(status: Obj) -> Obj:
    stripped = {k: v for k, v in status.items() if k != "conditions"}
    stripped["conditions"] = sorted(
        ({k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in status.get("conditions") or []
         if c.get("type") in CONDITION_ORDER),
        key=lambda c: str(c.get("type")))
    return stripped


def status_changed(desired: Obj, current: Obj | None) -> bool:
    """Whether the API's status differs from ours in anything but heartbeat times (fields the
    kubelet does not own, such as images or volumesInUse, are not compared)."""
    current = current or {}
    owned = {k: current.get(k) for k in desired if k != "conditions"}
    owned["conditions"] = current.get("conditions") or []
    return _without_heartbeats(desired) != _without_heartbeats(owned)


def status_patch(desired: Obj) -> Obj:
    """A strategic merge patch for nodes/status: conditions and addresses merge by type, so
    conditions other components own (NetworkUnavailable, say) survive the kubelet's reports."""
    return {"status": desired}

"""Container resources → OCI `linux.resources` and `process.oomScoreAdj`, as upstream computes them
(pkg/kubelet/cm helpers and the QoS OOM policy). Pure.

- memory limit (bytes) from limits.memory; swap limited to the same value, so a container never
  swaps (upstream's default without the swap feature);
- cpu shares from requests.cpu (milliCPU * 1024 / 1000, at least 2: a BestEffort container gets 2);
- cpu quota from limits.cpu over a 100 ms period (at least 1 ms of quota);
- pids limit: the kubelet's podPidsLimit, applied per container;
- oomScoreAdj: Guaranteed -997, BestEffort 1000, Burstable 1000 - 1000 * memoryRequest / capacity
  clamped to [3, 999].
"""

from __future__ import annotations

import math
from typing import Any

from kubelite.objects.validation.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]
MIN_SHARES, MAX_SHARES, SHARES_PER_CPU = 2, 262144, 1024
QUOTA_PERIOD, MIN_QUOTA = 100_000, 1_000
GUARANTEED_OOM_ADJ, BEST_EFFORT_OOM_ADJ = -997, 1000


def milli_cpu(text: Any) -> int:
    try:
        return math.ceil(parse_quantity(text).value * 1000)
    except QuantityError:
        return 0


def byte_value(text: Any) -> int:
    try:
        return math.ceil(parse_quantity(text).value)
    except QuantityError:
        return 0


def cpu_shares(milli: int) -> int:
    if milli <= 0:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, milli * SHARES_PER_CPU // 1000))


def cpu_quota(milli: int) -> int:
    return max(MIN_QUOTA, milli * QUOTA_PERIOD // 1000)


def linux_resources(container: Obj, *, pids_limit: int | None = None) -> Obj:
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    out: Obj = {"devices": [{"allow": False, "access": "rwm"}]}
    memory = byte_value(limits["memory"]) if "memory" in limits else 0
    if memory > 0:
        out["memory"] = {"limit": memory, "swap": memory}
    cpu: Obj = {"shares": cpu_shares(milli_cpu(requests.get("cpu", 0)))}
    limit_milli = milli_cpu(limits["cpu"]) if "cpu" in limits else 0
    if limit_milli > 0:
        cpu.update(quota=cpu_quota(limit_milli), period=QUOTA_PERIOD)
    out["cpu"] = cpu
    if pids_limit is not None and pids_limit > 0:
        out["pids"] = {"limit": pids_limit}
    return out


def _all_containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def qos_class(pod: Obj) -> str:
    """Guaranteed / Burstable / BestEffort from the pod spec (upstream's GetPodQOS)."""
    status_qos = (pod.get("status") or {}).get("qosClass")
    if status_qos:
        return str(status_qos)
    any_set, guaranteed = False, True
    for container in _all_containers(pod):
        res = container.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        for name in ("cpu", "memory"):
            req = requests.get(name, limits.get(name))
            if (name in requests and milli_cpu(requests[name]) > 0) or (name in limits and milli_cpu(limits[name]) > 0):
                any_set = True
            if name not in limits or req is None or milli_cpu(req) != milli_cpu(limits[name]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def oom_score_adj(pod: Obj, container: Obj, *, memory_capacity: int) -> int:
    qos = qos_class(pod)
    if qos == "Guaranteed":
        return GUARANTEED_OOM_ADJ
    if qos == "BestEffort":
        return BEST_EFFORT_OOM_ADJ
    requests = (container.get("resources") or {}).get("requests") or {}
    request = byte_value(requests["memory"]) if "memory" in requests else 0
    adj = 1000 - (1000 * request) // max(memory_capacity, 1)
    if adj < 1000 + GUARANTEED_OOM_ADJ:
        return 1000 + GUARANTEED_OOM_ADJ
    if adj == BEST_EFFORT_OOM_ADJ:
        return adj - 1
    return int(adj)

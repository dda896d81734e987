"""NodeResourcesFit: the pod's requests must fit what the node has left (allocatable minus what is
placed on it, assumed pods included), and one more pod must fit the node's pod count. Scoring is
upstream's default LeastAllocated strategy over cpu and memory (equal weights), on the non-zero
requests so best-effort pods spread too.

A shortfall larger than the node's whole allocatable is UnschedulableAndUnresolvable (evicting
pods could not help), as upstream since 1.31; otherwise Unschedulable.
"""

from __future__ import annotations

from kubelite.scheduler.cache import NodeInfo
from kubelite.scheduler.framework import MAX_NODE_SCORE, Code, Status
from kubelite.scheduler.podinfo import PodInfo

NAME = "NodeResourcesFit"
TOO_MANY_PODS = "Too many pods"


def insufficient(pod: PodInfo, node: NodeInfo) -> tuple[list[str], bool]:
    """The reasons the pod does not fit (upstream's order: pods, then each resource) and whether
    any of them is beyond the node's whole capacity."""
    reasons: list[str] = []
    unresolvable = False
    if len(node.pods) + 1 > node.allowed_pods:
        reasons.append(TOO_MANY_PODS)
    allocatable, requested = node.allocatable, node.requested
    for name, value in pod.requests.items():
        capacity = allocatable.get(name, 0)
        if value > capacity - requested.get(name, 0):
            reasons.append(f"Insufficient {name}")
            unresolvable = unresolvable or value > capacity
    return reasons, unresolvable


def least_allocated(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


class NodeResourcesFit:
    name = NAME

    def prefilter(self, pod: PodInfo) -> bool:
        return True

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status | None:
        if len(node.pods) < node.allowed_pods and not pod.requests:
            return None  # the common fast path: nothing requested, room for another pod
        reasons, unresolvable = insufficient(pod, node)
        if not reasons:
            return None
        code = Code.UNSCHEDULABLE_AND_UNRESOLVABLE if unresolvable else Code.UNSCHEDULABLE
        return Status(code, tuple(reasons), NAME)

    def prescore(self, pod: PodInfo) -> bool:
        return True

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        total = weights = 0
        cpu, memory = node.allocatable.get("cpu", 0), node.allocatable.get("memory", 0)
        if cpu:
            total += least_allocated(node.non_zero_cpu + pod.non_zero_cpu, cpu)
            weights += 1
        if memory:
            total += least_allocated(node.non_zero_memory + pod.non_zero_memory, memory)
            weights += 1
        return total // weights if weights else 0

    def normalize(self, pod: PodInfo, scores: list[int]) -> None:
        pass

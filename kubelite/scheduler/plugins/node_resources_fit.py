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
        if len(node.pods) < node.allowed_pods:  # the common case, checked without building reasons
            free = node.free
            for name, value in pod.requests.items():
                if value > free.get(name, 0):
                    break
            else:
                return None
        reasons, unresolvable = insufficient(pod, node)
        if not reasons:
            return None
        code = Code.UNSCHEDULABLE_AND_UNRESOLVABLE if unresolvable else Code.UNSCHEDULABLE
        return Status(code, tuple(reasons), NAME)

    def prescore(self, pod: PodInfo) -> bool:
        return True

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        cpu, memory = node.alloc_cpu, node.alloc_memory
        if cpu and memory:  # inlined least_allocated: this runs for every scored node
            used_cpu, used_memory = node.non_zero_cpu + pod.non_zero_cpu, node.non_zero_memory + pod.non_zero_memory
            return (((cpu - used_cpu) * MAX_NODE_SCORE // cpu if used_cpu <= cpu else 0) +
                    ((memory - used_memory) * MAX_NODE_SCORE // memory if used_memory <= memory else 0)) // 2
        if cpu:
            return least_allocated(node.non_zero_cpu + pod.non_zero_cpu, cpu)
        if memory:
            return least_allocated(node.non_zero_memory + pod.non_zero_memory, memory)
        return 0

    def normalize(self, pod: PodInfo, scores: list[int]) -> None:
        pass

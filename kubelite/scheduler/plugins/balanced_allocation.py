"""NodeResourcesBalancedAllocation: prefer nodes where cpu and memory would be used in similar
proportions after placing the pod: score = (1 - standard deviation of the used fractions) * 100.

As upstream, the fractions use actual requests (not the non-zero defaults), are capped at 1, skip
resources the node has none of; best-effort pods skip this plugin (upstream issue 129138: scoring
them piles them onto one node).
"""

from __future__ import annotations

import math

from kubelite.scheduler.cache import NodeInfo
from kubelite.scheduler.framework import MAX_NODE_SCORE
from kubelite.scheduler.podinfo import PodInfo

NAME = "NodeResourcesBalancedAllocation"
RESOURCES = ("cpu", "memory")


def balance_score(fractions: list[float]) -> int:
    if len(fractions) == 2:
        std = abs(fractions[0] - fractions[1]) / 2
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    else:
        std = 0.0
    return int((1 - std) * MAX_NODE_SCORE)


class BalancedAllocation:
    name = NAME

    def prescore(self, pod: PodInfo) -> bool:
        return bool(pod.cpu or pod.memory)

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        cpu, memory = node.alloc_cpu, node.alloc_memory
        if cpu and memory:  # the two-resource case inlined: this runs for every scored node
            cpu_fraction = (node.req_cpu + pod.cpu) / cpu
            memory_fraction = (node.req_memory + pod.memory) / memory
            std = abs((cpu_fraction if cpu_fraction < 1 else 1.0) - (memory_fraction if memory_fraction < 1 else 1.0)) / 2
            return int((1 - std) * MAX_NODE_SCORE)
        fractions = []
        for resource in RESOURCES:
            capacity = node.allocatable.get(resource, 0)
            if capacity:
                used = node.requested.get(resource, 0) + pod.requests.get(resource, 0)
                fractions.append(min(used / capacity, 1.0))
        return balance_score(fractions)

    def normalize(self, pod: PodInfo, scores: list[int]) -> None:
        pass

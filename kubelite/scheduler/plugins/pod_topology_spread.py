"""PodTopologySpread, as its system default constraint by hostname (maxSkew 3, ScheduleAnyway):
fewer pods of the same controller on a node scores higher, so replicas spread over nodes.

Upstream derives the selector from the services, ReplicaSets, StatefulSets... that select the
pod; here the pods counted are those with the same controlling owner (ownerReference with
controller=true), which is what that selector finds for workload replicas. Raw score per node =
count * log(nodes + 2) + (maxSkew - 1), normalized as upstream: 100 * (max + min - s) / max.
Pods without a controller skip the plugin. (The default zone constraint is not modelled.)
"""

from __future__ import annotations

import math

from kubelite.scheduler.cache import NodeInfo
from kubelite.scheduler.framework import MAX_NODE_SCORE
from kubelite.scheduler.podinfo import PodInfo

NAME = "PodTopologySpread"
MAX_SKEW = 3


def spread_scores(counts: list[int]) -> list[int]:
    """Upstream's hostname-constraint scoring of matching-pod counts, normalized to 0-100."""
    weight = math.log(len(counts) + 2)
    raw = [round(count * weight + (MAX_SKEW - 1)) for count in counts]
    highest, lowest = max(raw, default=0), min(raw, default=0)
    if highest == 0:
        return [MAX_NODE_SCORE] * len(raw)
    return [MAX_NODE_SCORE * (highest + lowest - s) // highest for s in raw]


class PodTopologySpread:
    name = NAME

    def prescore(self, pod: PodInfo) -> bool:
        return bool(pod.owner)

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        return node.owners.get(pod.owner, 0)

    def normalize(self, pod: PodInfo, scores: list[int]) -> None:
        scores[:] = spread_scores(scores)

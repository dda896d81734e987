"""NodeName: a pod that names its node (spec.nodeName) fits only that node.

Pods the scheduler places have no nodeName, so this matters for what-if checks (preemption
diagnosis) and for parity with upstream's filter list.
"""

from __future__ import annotations

from kubelite.scheduler.cache import NodeInfo
from kubelite.scheduler.framework import Status
from kubelite.scheduler.podinfo import PodInfo

NAME = "NodeName"
REASON = "node(s) didn't match the requested node name"
REJECTED = Status.unresolvable(REASON, plugin=NAME)


def wanted_node(pod: PodInfo) -> str:
    return str((pod.pod.get("spec") or {}).get("nodeName") or "")


class NodeName:
    name = NAME

    def prefilter(self, pod: PodInfo) -> bool:
        return bool(wanted_node(pod))

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if wanted_node(pod) == node.name else REJECTED

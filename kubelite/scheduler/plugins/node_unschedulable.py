"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take only pods that tolerate the
`node.kubernetes.io/unschedulable:NoSchedule` taint (DaemonSet pods do)."""

from __future__ import annotations

from kubelite.scheduler.cache import NodeInfo
from kubelite.scheduler.framework import Status
from kubelite.scheduler.podinfo import PodInfo

NAME = "NodeUnschedulable"
TAINT_KEY = "node.kubernetes.io/unschedulable"
REASON = "node(s) were unschedulable"
REJECTED = Status.unresolvable(REASON, plugin=NAME)


class NodeUnschedulable:
    name = NAME

    def prefilter(self, pod: PodInfo) -> bool:
        return not any(t.tolerates(TAINT_KEY, "", "NoSchedule") for t in pod.tolerations)

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status | None:
        return REJECTED if node.unschedulable else None

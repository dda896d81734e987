"""NodePorts: a pod's hostPorts must be free on the node (same protocol and port, on the same host
IP or either side bound to 0.0.0.0)."""

from __future__ import annotations

from kubelite.scheduler.cache import NodeInfo
from kubelite.scheduler.framework import Status
from kubelite.scheduler.podinfo import PodInfo

NAME = "NodePorts"
REASON = "node(s) didn't have free ports for the requested pod ports"
REJECTED = Status.unschedulable(REASON, plugin=NAME)


class NodePorts:
    name = NAME

    def prefilter(self, pod: PodInfo) -> bool:
        return bool(pod.ports)

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status | None:
        for ip, protocol, port in pod.ports:
            if node.port_conflict(ip, protocol, port):
                return REJECTED
        return None

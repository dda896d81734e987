"""The scheduler's view of the cluster: one NodeInfo per node with what is placed on it.

Fed by the node and pod informers (pods that have a node) and by the scheduler itself: a pod it
has decided on is *assumed* onto its node at once, so the next decision already sees it, long
before the binding's watch event arrives. When that event comes the assumption is confirmed (the
same accounting, now backed by the API's object); if the binding fails the pod is *forgotten*.

Invariants: every pod in `pods` is counted on exactly one NodeInfo (`pod.node_name`); a NodeInfo
whose node is deleted stays, without a node, until its last pod is gone (upstream does the same, so
late pod deletions still find their node); `order` lists the NodeInfos that have a node, in the
order nodes appeared, and is what the scheduler iterates over.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from kubelite.scheduler.podinfo import BIND_ALL, Obj, PodInfo, Resources, resource_list

Taint = tuple[str, str, str]  # key, value, effect
HARD_EFFECTS = ("NoSchedule", "NoExecute")


class NodeInfo:
    __slots__ = ("name", "node", "labels", "taints", "hard_taints", "soft_taints", "unschedulable",
                 "allocatable", "allowed_pods", "alloc_cpu", "alloc_memory", "requested", "free", "req_cpu",
                 "req_memory", "non_zero_cpu", "non_zero_memory", "pods", "ports", "wildcard_ports", "owners")

    def __init__(self, name: str, node: Obj | None = None) -> None:
        self.name = name
        self.node: Obj | None = None
        self.labels: dict[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        self.hard_taints: tuple[Taint, ...] = ()
        self.soft_taints: tuple[Taint, ...] = ()
        self.unschedulable = False
        self.allocatable: Resources = {}
        self.allowed_pods = 0
        self.alloc_cpu = self.alloc_memory = 0
        self.requested: Resources = {}
        self.free: Resources = {}  # allocatable - requested, per resource either mentions
        self.req_cpu = self.req_memory = 0  # requested["cpu"] and ["memory"], for the scorers
        self.non_zero_cpu = 0
        self.non_zero_memory = 0
        self.pods: dict[str, PodInfo] = {}
        self.ports: Counter[tuple[str, str, int]] = Counter()
        self.wildcard_ports: Counter[tuple[str, int]] = Counter()  # (protocol, port) on any host IP
        self.owners: Counter[str] = Counter()
        if node is not None:
            self.set_node(node)

    def set_node(self, node: Obj) -> None:
        spec, status = node.get("spec") or {}, node.get("status") or {}
        self.node = node
        self.labels = dict((node.get("metadata") or {}).get("labels") or {})
        self.taints = tuple((str(t.get("key") or ""), str(t.get("value") or ""), str(t.get("effect") or ""))
                            for t in spec.get("taints") or [])
        self.hard_taints = tuple(t for t in self.taints if t[2] in HARD_EFFECTS)
        self.soft_taints = tuple(t for t in self.taints if t[2] == "PreferNoSchedule")
        self.unschedulable = bool(spec.get("unschedulable"))
        self.allocatable = resource_list(status.get("allocatable"))
        self.allowed_pods = self.allocatable.get("pods", 0)
        self.alloc_cpu, self.alloc_memory = self.allocatable.get("cpu", 0), self.allocatable.get("memory", 0)
        self.free = {name: self.allocatable.get(name, 0) - self.requested.get(name, 0)
                     for name in {*self.allocatable, *self.requested}}

    def add_pod(self, pod: PodInfo) -> None:
        self.pods[pod.key] = pod
        self._account(pod, 1)

    def remove_pod(self, pod: PodInfo) -> None:
        if self.pods.pop(pod.key, None) is not None:
            self._account(pod, -1)

    def _account(self, pod: PodInfo, sign: int) -> None:
        requested, free, allocatable = self.requested, self.free, self.allocatable
        for name, value in pod.requests.items():
            requested[name] = requested.get(name, 0) + sign * value
            free[name] = allocatable.get(name, 0) - requested[name]
        self.req_cpu, self.req_memory = requested.get("cpu", 0), requested.get("memory", 0)
        self.non_zero_cpu += sign * pod.non_zero_cpu
        self.non_zero_memory += sign * pod.non_zero_memory
        for ip, protocol, port in pod.ports:
            self.ports[(ip, protocol, port)] += sign
            self.wildcard_ports[(protocol, port)] += sign
        if pod.owner:
            self.owners[pod.owner] += sign

    def port_conflict(self, ip: str, protocol: str, port: int) -> bool:
        """Upstream's HostPortInfo.CheckConflict: 0.0.0.0 clashes with every IP on that port."""
        if ip == BIND_ALL:
            return self.wildcard_ports[(protocol, port)] > 0
        return self.ports[(ip, protocol, port)] > 0 or self.ports[(BIND_ALL, protocol, port)] > 0

    def clone(self) -> NodeInfo:
        """A copy to try what-ifs on (preemption diagnosis) without touching the cache."""
        copy = NodeInfo(self.name)
        for slot in NodeInfo.__slots__:
            setattr(copy, slot, getattr(self, slot))
        copy.requested, copy.free, copy.pods = dict(self.requested), dict(self.free), dict(self.pods)
        copy.ports, copy.wildcard_ports = Counter(self.ports), Counter(self.wildcard_ports)
        copy.owners = Counter(self.owners)
        return copy


class Cache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.order: list[NodeInfo] = []
        self.pods: dict[str, PodInfo] = {}
        self.assumed: set[str] = set()

    # ----- nodes ---------------------------------------------------------------------------------

    def set_node(self, node: Obj) -> NodeInfo:
        name = str(node["metadata"]["name"])
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name)
        if info.node is None:
            self.order.append(info)
        info.set_node(node)
        return info

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None or info.node is None:
            return
        info.node = None
        self.order.remove(info)
        if not info.pods:
            del self.nodes[name]

    # ----- pods ----------------------------------------------------------------------------------

    def set_pod(self, pod: Obj) -> None:
        """A pod the API says is on a node (added or updated); confirms an assumption."""
        node_name = str((pod.get("spec") or {}).get("nodeName") or "")
        meta = pod.get("metadata") or {}
        key = f"{meta.get('namespace') or ''}/{meta.get('name')}"
        current = self.pods.get(key)
        if key in self.assumed and current is not None and current.node_name == node_name:
            self.assumed.discard(key)
            current.pod = pod  # the spec is what we assumed with; only the object is newer
            return
        self.remove_pod(key)
        info = PodInfo.of(pod)
        self._place(info, node_name)

    def remove_pod(self, key: str) -> PodInfo | None:
        info = self.pods.pop(key, None)
        self.assumed.discard(key)
        if info is None:
            return None
        node = self.nodes.get(info.node_name)
        if node is not None:
            node.remove_pod(info)
            if node.node is None and not node.pods:
                del self.nodes[info.node_name]
        return info

    def assume(self, info: PodInfo, node_name: str) -> None:
        self.remove_pod(info.key)
        self._place(info, node_name)
        self.assumed.add(info.key)

    def forget(self, key: str) -> None:
        if key in self.assumed:
            self.remove_pod(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    def _place(self, info: PodInfo, node_name: str) -> None:
        info.node_name = node_name
        node = self.nodes.get(node_name)
        if node is None:
            node = self.nodes[node_name] = NodeInfo(node_name)
        node.add_pod(info)
        self.pods[info.key] = info

    def stats(self) -> dict[str, Any]:
        return {"nodes": len(self.order), "pods": len(self.pods), "assumed": len(self.assumed)}

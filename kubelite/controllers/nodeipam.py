"""Node IPAM: gives every Node a podCIDR, one /`node_cidr_mask_size` (default /24) of
`cluster_cidr` (upstream's RangeAllocator).

Data flow: node events enqueue the node's name; `sync` looks at the cached Node. A node with a
podCIDR has it marked taken; a node without one gets the next free block, written with a patch of
`spec.podCIDR`/`spec.podCIDRs` (the API lets them be set once and never changed). A deleted node's
block is released, and nodes that found the range full are retried.

Invariants: no block is ever handed to two nodes. Before any allocation the controller marks
every block already recorded on the nodes (`run` primes the set from the synced cache), so the
assignment is stable across restarts. A block we patched onto a node is held in `_assigned`
before the watch shows it, so a sync against a stale cache neither allocates a second block nor
writes twice. Allocation rotates (the next block after the last one given), so a released block is
reused only after the range wraps round.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kubelite.client.resources import NODES
from kubelite.controllers.base import Controller, Obj

DEFAULT_CLUSTER_CIDR = "198.18.0.0/16"
DEFAULT_MASK_SIZE = 24


class CidrSetFull(Exception):
    pass


class CidrSet:
    """The blocks of one cluster CIDR, each free or taken (upstream's cidrset)."""

    def __init__(self, cluster_cidr: str, mask_size: int) -> None:
        self.network = ipaddress.ip_network(cluster_cidr)
        if not self.network.prefixlen <= mask_size <= self.network.max_prefixlen:
            raise ValueError(f"node mask size /{mask_size} does not fit in cluster CIDR {cluster_cidr}")
        self.mask_size = mask_size
        self.size = 2 ** (mask_size - self.network.prefixlen)
        self._step = 2 ** (self.network.max_prefixlen - mask_size)
        self._taken: set[int] = set()
        self._next = 0

    def _block(self, index: int) -> str:
        return f"{self.network.network_address + index * self._step}/{self.mask_size}"

    def _index(self, cidr: str) -> int | None:
        try:
            block = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if block.version != self.network.version or block.prefixlen != self.mask_size or \
                not block.subnet_of(self.network):  # type: ignore[arg-type]
            return None
        return (int(block.network_address) - int(self.network.network_address)) // self._step

    def allocate(self) -> str:
        for offset in range(self.size):
            index = (self._next + offset) % self.size
            if index not in self._taken:
                self._taken.add(index)
                self._next = (index + 1) % self.size
                return self._block(index)
        raise CidrSetFull(f"no free /{self.mask_size} left in {self.network}")

    def occupy(self, cidr: str) -> bool:
        """Mark `cidr` taken; False if it is not one of our blocks (a node set up by hand)."""
        index = self._index(cidr)
        if index is None:
            return False
        self._taken.add(index)
        return True

    def release(self, cidr: str) -> None:
        index = self._index(cidr)
        if index is not None:
            self._taken.discard(index)

    def used(self) -> int:
        return len(self._taken)


@dataclass(frozen=True)
class _Held:
    uid: str
    cidr: str


def _uid(node: Obj) -> str:
    return str(node["metadata"].get("uid") or "")


def _pod_cidr(node: Obj) -> str:
    spec = node.get("spec") or {}
    cidrs = spec.get("podCIDRs") or []
    return str(cidrs[0] if cidrs else spec.get("podCIDR") or "")


class NodeIpamController(Controller):
    name = "nodeipam"
    workers = 1  # allocations are sequential anyway; one worker keeps them in event order

    def name_for_events(self) -> str:
        return "cidrAllocator"

    def setup(self) -> None:
        cluster_cidr = getattr(self.options, "cluster_cidr", DEFAULT_CLUSTER_CIDR)
        mask_size = getattr(self.options, "node_cidr_mask_size", DEFAULT_MASK_SIZE)
        self.cidrs = CidrSet(cluster_cidr, mask_size)
        self._assigned: dict[str, _Held] = {}  # node name -> the block it has (or we are giving it)
        self._waiting: set[str] = set()  # nodes that found the range full
        self.nodes = self.informers.informer(NODES)
        self.nodes.add_handlers(self.enqueue_handlers())

    async def run(self) -> None:
        self.prime(self.nodes.list())
        await super().run()

    def prime(self, nodes: list[Obj]) -> None:
        """Mark every block already on a node, before anything is allocated."""
        for node in nodes:
            cidr = _pod_cidr(node)
            if cidr and self.cidrs.occupy(cidr):
                self._assigned[node["metadata"]["name"]] = _Held(_uid(node), cidr)

    async def sync(self, key: str) -> None:
        node = self.nodes.get(key)
        held = self._assigned.get(key)
        if held is not None and (node is None or _uid(node) != held.uid):
            self._release(key)  # deleted, or deleted and created again under the same name
            held = None
        if node is None:
            return
        cidr = _pod_cidr(node)
        if cidr:
            self._adopt(node, cidr, held)
        elif held is None:
            await self._allocate(node)
        # else: we gave it a block and the watch has not shown it yet

    def _adopt(self, node: Obj, cidr: str, held: _Held | None) -> None:
        name = node["metadata"]["name"]
        if held is not None and held.cidr == cidr:
            return
        if held is not None:
            self.cidrs.release(held.cidr)
        if self.cidrs.occupy(cidr):
            self._assigned[name] = _Held(_uid(node), cidr)
        else:
            self.log.info("node %s has podCIDR %s outside the cluster CIDR; leaving it", name, cidr)

    async def _allocate(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        try:
            cidr = self.cidrs.allocate()
        except CidrSetFull:
            if name not in self._waiting:
                self._waiting.add(name)
                self.events.record(node, "Normal", "CIDRNotAvailable", f"Node {name} status is now: CIDRNotAvailable")
            return
        self._assigned[name] = _Held(_uid(node), cidr)
        try:
            await self.client.patch(NODES, name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except BaseException:
            self._release(name)
            raise
        self._waiting.discard(name)
        self.log.info("node %s: podCIDR %s", name, cidr)

    def _release(self, name: str) -> None:
        held = self._assigned.pop(name, None)
        if held is None:
            return
        self.cidrs.release(held.cidr)
        for waiting in sorted(self._waiting):
            self.queue.add(waiting)
        self._waiting.clear()

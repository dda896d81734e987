"""Pod addresses from the node's podCIDR, as CNI's host-local plugin hands them out.

The network and broadcast addresses and the gateway (the first host address) are never given out.
Allocation is sequential and round-robin: the next address after the last one given, wrapping
around, so an address just released is not reused at once (endpoints elsewhere may still point
at it). Pure and in memory: the agent rebuilds it from the pods it runs after a restart.
"""

from __future__ import annotations

import ipaddress


class RangeFull(Exception):
    pass


class HostLocalIpam:
    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr)
        if self.network.num_addresses < 4:
            raise ValueError(f"pod CIDR {cidr} is too small")
        self._first = int(self.network.network_address) + 2  # skip the network address and the gateway
        self._last = int(self.network.broadcast_address) - 1
        self._next = self._first
        self._owners: dict[int, str] = {}
        self._by_owner: dict[str, int] = {}

    @property
    def cidr(self) -> str:
        return str(self.network)

    @property
    def size(self) -> int:
        return self._last - self._first + 1

    def allocate(self, owner: str) -> str:
        """The next free address for `owner` (the same one again if it already holds one)."""
        if owner in self._by_owner:
            return str(ipaddress.ip_address(self._by_owner[owner]))
        if len(self._owners) >= self.size:
            raise RangeFull(f"no free addresses in {self.network}")
        candidate = self._next
        while candidate in self._owners:
            candidate = self._first if candidate >= self._last else candidate + 1
        self._owners[candidate] = owner
        self._by_owner[owner] = candidate
        self._next = self._first if candidate >= self._last else candidate + 1
        return str(ipaddress.ip_address(candidate))

    def reserve(self, address: str, owner: str) -> bool:
        """Mark `address` as held by `owner` (recovery); False if it is outside or taken."""
        value = int(ipaddress.ip_address(address))
        if not self._first <= value <= self._last or self._owners.get(value, owner) != owner:
            return False
        if self._by_owner.get(owner, value) != value:
            return False
        self._owners[value] = owner
        self._by_owner[owner] = value
        return True

    def release(self, owner: str) -> None:
        address = self._by_owner.pop(owner, None)
        if address is not None:
            del self._owners[address]

    def in_use(self) -> int:
        return len(self._owners)

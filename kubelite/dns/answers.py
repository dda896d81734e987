"""Rendering answers to wire format, and the cache of rendered cluster answers.

Most cluster-zone questions repeat: the same Service names, and above all the search-path
NXDOMAINs every pod's `ndots:5` causes. `RenderedAnswers` keeps the bytes of each in-zone answer
(after the 2-byte ID) keyed by the query's bytes after its ID and the transport, so a repeated
question costs a dict lookup instead of parsing, resolving and rendering.

Invariants: entries belong to one index serial; the first lookup under a newer serial drops them
all, so an answer is never older than the index it came from. An answer whose rrsets hold several
records (a headless Service's addresses, SRV sets) is kept as up to `MAX_ROTATIONS` variants, each
with the records rotated one further, served in turn: clients that take the first address spread
over the endpoints round-robin, as with CoreDNS's loadbalance plugin. Memory is bounded by
`max_bytes` (all entries are dropped when it is exceeded).
"""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.rrset

MAX_ROTATIONS = 16
Key = tuple[bytes, bool]  # (query after its ID, over UDP)


def render(response: dns.message.Message, max_size: int, *, shuffle: bool = True) -> bytes:
    """Wire format within max_size; a response that does not fit goes out without records and
    with TC set (the client then asks again over TCP). `shuffle` lets dnspython order each
    rrset's records randomly."""
    try:
        return response.to_wire(max_size=max_size, want_shuffle=shuffle)
    except dns.exception.TooBig:
        response.answer, response.authority, response.additional = [], [], []
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=max_size)


def rotated(rrset: dns.rrset.RRset, turn: int) -> dns.rrset.RRset:
    if len(rrset) < 2 or turn % len(rrset) == 0:
        return rrset
    rdatas = list(rrset)
    shift = turn % len(rdatas)
    return dns.rrset.from_rdata_list(rrset.name, rrset.ttl, rdatas[shift:] + rdatas[:shift])


class _Entry:
    __slots__ = ("response", "size", "turn", "variants")

    def __init__(self, response: dns.message.Message, size: int, rotations: int) -> None:
        self.response, self.size, self.turn = response, size, 0
        self.variants: list[bytes | None] = [None] * rotations

    def variant(self, turn: int) -> tuple[bytes, bool]:
        """(answer after its ID, whether it was rendered just now)."""
        slot = turn % len(self.variants)
        ready = self.variants[slot]
        if ready is not None:
            return ready, False
        message = self.response
        kept = message.answer, message.authority, message.additional, message.flags
        message.answer = [rotated(rrset, slot) for rrset in kept[0]]
        try:
            rendered = render(message, self.size, shuffle=False)[2:]
        finally:
            message.answer, message.authority, message.additional, message.flags = kept
        self.variants[slot] = rendered
        return rendered, True


class RenderedAnswers:
    def __init__(self, *, max_bytes: int = 16 << 20, max_query: int = 512) -> None:
        self.max_bytes, self.max_query = max_bytes, max_query
        self.serial = -1
        self.bytes = 0
        self._entries: dict[Key, _Entry] = {}

    def get(self, key: Key, serial: int) -> bytes | None:
        if serial != self.serial:
            self.clear()
            self.serial = serial
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        entry.turn += 1
        answer, fresh = entry.variant(entry.turn)
        self._account(len(answer) if fresh else 0)
        return answer

    def put(self, key: Key, response: dns.message.Message, size: int) -> bytes:
        """Render `response` (a cluster answer to the query `key` came from), keep it, return it."""
        if len(key[0]) > self.max_query:
            return render(response, size)
        rotations = min(MAX_ROTATIONS, max((len(rrset) for rrset in response.answer), default=1))
        entry = _Entry(response, size, max(1, rotations))
        answer, _ = entry.variant(0)
        self._entries[key] = entry
        self._account(len(answer))
        return response.id.to_bytes(2, "big") + answer

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def _account(self, added: int) -> None:
        self.bytes += added
        if self.bytes > self.max_bytes:
            self.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, Any]:
        return {"entries": len(self._entries), "bytes": self.bytes, "serial": self.serial}

"""Names outside the cluster zone: forwarded to upstream resolvers, answers kept in a small cache.

Upstreams come from configuration, or from the host's /etc/resolv.conf with the nameservers that
would point back at this server left out (one of its listen addresses when it listens on port 53,
the DNS Service IP, and every loopback address when it listens on a wildcard address on port 53):
CoreDNS's `loop` plugin exists because forwarding to yourself turns one query into a storm. `upstreams_from_resolv_conf`
is pure for that reason.

Forwarding: the query goes over UDP to each upstream in turn (2 s each), and over TCP to the same
upstream when the UDP answer is truncated. Concurrent identical questions share one upstream
query. Answers are cached by (name, type, class) for their smallest TTL, capped at
`MAX_TTL`/`MAX_NEGATIVE_TTL`; a cached answer is served with its TTLs reduced by its age.
SERVFAIL and failures are never cached. The cache is an LRU of at most `capacity` entries.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

log = logging.getLogger(__name__)

MAX_TTL = 300
MAX_NEGATIVE_TTL = 30
UPSTREAM_TIMEOUT = 2.0


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int = 53

    @classmethod
    def parse(cls, text: str) -> Upstream:
        """"1.1.1.1", "127.0.0.1:5353", "[::1]:53", "::1"."""
        text = text.strip()
        if text.startswith("["):
            host, _, port = text[1:].partition("]")
            return cls(host, int(port.lstrip(":") or 53))
        if text.count(":") == 1:
            host, port = text.split(":")
            return cls(host, int(port))
        return cls(text)


def upstreams_from_resolv_conf(text: str, *, listen: Iterable[tuple[str, int]],
                               own_ips: Iterable[str] = ()) -> list[Upstream]:
    """The nameservers of a resolv.conf that do not lead back to us."""
    listen = list(listen)
    ours = {(address, port) for ip, port in [*listen, *((ip, 53) for ip in own_ips)]
            if (address := _ip(ip)) is not None}
    wildcard_53 = any(port == 53 and ip.is_unspecified for ip, port in ours)
    found = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) < 2 or fields[0] != "nameserver":
            continue
        address = _ip(fields[1].split("%", 1)[0])
        if address is None:
            continue
        if (address, 53) in ours or (address.is_loopback and wildcard_53):
            continue
        found.append(Upstream(str(address)))
    return found


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class AnswerCache:
    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, int, int], tuple[float, float, dns.message.Message]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: tuple[str, int, int], *, now: float | None = None) -> dns.message.Message | None:
        now = time.monotonic() if now is None else now
        entry = self._entries.get(key)
        if entry is None or entry[1] <= now:
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        stored, _, message = entry
        return _aged(message, int(now - stored))

    def put(self, key: tuple[str, int, int], message: dns.message.Message, *, now: float | None = None) -> None:
        ttl = cache_ttl(message)
        if ttl <= 0:
            return
        now = time.monotonic() if now is None else now
        self._entries[key] = (now, now + ttl, message)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def cache_ttl(message: dns.message.Message) -> int:
    """How long an upstream answer may be reused: its smallest TTL (for a negative answer, the
    SOA's, bounded by the SOA minimum); 0 for answers not worth keeping."""
    rcode = message.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or message.flags & dns.flags.TC:
        return 0
    if message.answer and rcode == dns.rcode.NOERROR:
        return min(MAX_TTL, *(rrset.ttl for rrset in message.answer))
    for rrset in message.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            return min(MAX_NEGATIVE_TTL, rrset.ttl, rrset[0].minimum)  # type: ignore[attr-defined]
    return 0


def _aged(message: dns.message.Message, age: int) -> dns.message.Message:
    copy = dns.message.from_wire(message.to_wire())
    if age > 0:
        for section in (copy.answer, copy.authority, copy.additional):
            for rrset in section:
                rrset.ttl = max(0, rrset.ttl - age)
    return copy


class Forwarder:
    def __init__(self, upstreams: list[Upstream], *, cache_size: int = 1000,
                 timeout: float = UPSTREAM_TIMEOUT) -> None:
        self.upstreams = upstreams
        self.timeout = timeout
        self.cache = AnswerCache(cache_size)
        self._inflight: dict[tuple[str, int, int], asyncio.Future[dns.message.Message | None]] = {}

    async def lookup(self, qname: dns.name.Name, rdtype: int,
                     rdclass: int = dns.rdataclass.IN) -> dns.message.Message | None:
        """The upstream answer to (qname, rdtype), None when no upstream answered."""
        key = (qname.to_text().lower(), rdtype, rdclass)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[dns.message.Message | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            answer = await self._ask_upstreams(qname, rdtype, rdclass)
            if answer is not None:
                self.cache.put(key, answer)
            future.set_result(answer)
            return answer
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters see it through shield, no "never retrieved" log
            raise
        finally:
            del self._inflight[key]

    async def _ask_upstreams(self, qname: dns.name.Name, rdtype: int, rdclass: int) -> dns.message.Message | None:
        query = dns.message.make_query(qname, dns.rdatatype.RdataType.make(rdtype),
                                       dns.rdataclass.RdataClass.make(rdclass), use_edns=0, payload=1232)
        for upstream in self.upstreams:
            try:
                answer = await dns.asyncquery.udp(query, upstream.host, port=upstream.port, timeout=self.timeout)
                if answer.flags & dns.flags.TC:
                    answer = await dns.asyncquery.tcp(query, upstream.host, port=upstream.port,
                                                      timeout=self.timeout)
            except (OSError, dns.exception.DNSException) as exc:
                log.debug("upstream %s:%d failed for %s: %s", upstream.host, upstream.port, qname, exc)
                continue
            if answer.rcode() != dns.rcode.SERVFAIL:
                return answer
        return None

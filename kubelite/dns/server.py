"""The cluster DNS server: UDP and TCP listeners (asyncio) answering the cluster zone from a
`ClusterIndex` kept current by informers, and forwarding every other name upstream.

Data flow: Service, EndpointSlice and Pod informers (through `kubelite.client`, like any other
component) -> handlers update the `ClusterIndex` -> each query is parsed with dnspython, answered by
`records.resolve` (pure) or by the `Forwarder`, and rendered to wire format. In-zone answers are
computed synchronously in the datagram callback; only forwarded or chased names cost a task.
Rendered in-zone answers are reused while the index is unchanged (`answers.RenderedAnswers`).

Invariants: listeners open only after the informers synced (or 5 s passed, as CoreDNS starts
unsynced after its own wait), so a restart does not answer NXDOMAIN for names that exist; a UDP
answer never exceeds 512 bytes, or the client's EDNS payload capped at 1232, and one that would is
sent empty with TC set so the client retries over TCP; the server never forwards to itself (see
`forward.upstreams_from_resolv_conf`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from kubelite.dns.answers import RenderedAnswers, render
from kubelite.dns.forward import Forwarder, Upstream, upstreams_from_resolv_conf
from kubelite.dns.index import ClusterIndex
from kubelite.dns.records import Reply, Zone, resolve

log = logging.getLogger(__name__)

SYNC_WAIT = 5.0
UDP_DEFAULT_SIZE = 512
UDP_MAX_SIZE = 1232  # the DNS flag day 2020 default: no IP fragmentation
TCP_IDLE_TIMEOUT = 10.0
ZONE_TRANSFERS = (dns.rdatatype.AXFR, dns.rdatatype.IXFR)
Result = bytes | Awaitable[bytes] | None


class DnsServer:
    def __init__(self, client: Any, *, listen: Sequence[tuple[str, int]], zone: str = "cluster.local",
                 dns_ip: str = "198.19.0.10", upstreams: Sequence[str | Upstream] | None = None,
                 resolv_conf: Path = Path("/etc/resolv.conf"), index: ClusterIndex | None = None) -> None:
        """`client` None serves `index` as given (tests, benchmarks); `upstreams` None reads the
        host's resolv.conf at start."""
        self.client = client
        self.listen = list(listen)
        self.zone = Zone.of(zone, dns_ip)
        self.index = index or ClusterIndex()
        self._upstreams = upstreams
        self._resolv_conf = resolv_conf
        self.forwarder = Forwarder([])
        self.addresses: list[tuple[str, int]] = []  # bound (host, port), port 0 resolved
        self._informers: list[Any] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._transports: list[asyncio.DatagramTransport] = []
        self._tcp_servers: list[asyncio.Server] = []
        self._tcp_writers: set[asyncio.StreamWriter] = set()
        self.queries = 0
        self.answers = RenderedAnswers()

    # ----- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self.forwarder.upstreams = self._resolve_upstreams()
        if self.client is not None:
            await self._start_informers()
        for host, port in self.listen:
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, port))
            self._transports.append(transport)
            port = transport.get_extra_info("sockname")[1]
            self._tcp_servers.append(await asyncio.start_server(self._serve_tcp, host, port))
            self.addresses.append((host, port))
        log.info("cluster DNS for %s on %s, forwarding to %s", self.zone.origin,
                 ", ".join(f"{h}:{p}" for h, p in self.addresses),
                 ", ".join(f"{u.host}:{u.port}" for u in self.forwarder.upstreams) or "nobody")

    async def run(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        for transport in self._transports:
            transport.close()
        for server in self._tcp_servers:
            server.close()
        for writer in list(self._tcp_writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._tcp_servers:
            await server.wait_closed()
        self._transports.clear()
        self._tcp_servers.clear()

    def _resolve_upstreams(self) -> list[Upstream]:
        if self._upstreams is not None:
            return [u if isinstance(u, Upstream) else Upstream.parse(u) for u in self._upstreams]
        try:
            text = self._resolv_conf.read_text()
        except OSError as exc:
            log.warning("cluster DNS: cannot read %s (%s): other names will fail", self._resolv_conf, exc)
            return []
        return upstreams_from_resolv_conf(text, listen=self.listen, own_ips=[self.zone.dns_ip])

    async def _start_informers(self) -> None:
        from kubelite.client import Handlers, Informer
        from kubelite.client.resources import ENDPOINTSLICES, PODS, SERVICES

        index = self.index
        feeds = [(SERVICES, "", index.put_service, index.delete_service),
                 (ENDPOINTSLICES, "", index.put_slice, index.delete_slice),
                 (PODS, "status.podIP!=", index.put_pod, index.delete_pod)]
        for rt, fields, put, delete in feeds:
            informer = Informer(self.client, rt, field_selector=fields)
            informer.add_handlers(Handlers(on_add=put, on_update=_newest(put), on_delete=delete))
            self._informers.append(informer)
            self._spawn(informer.run(), name=f"dns-informer:{rt.group_resource}")
        try:
            await asyncio.wait_for(asyncio.gather(*(i.wait_synced() for i in self._informers)), SYNC_WAIT)
        except TimeoutError:
            log.warning("cluster DNS: serving before its caches synced")

    def _spawn(self, coro: Any, *, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ----- one query ------------------------------------------------------------------------------

    def handle(self, wire: bytes, *, udp: bool) -> Result:
        """The answer to one query in wire format: bytes, an awaitable of bytes when the answer
        needs upstream, or None to drop the datagram (not a query at all)."""
        self.queries += 1
        key = (wire[2:], udp)
        hit = self.answers.get(key, self.index.serial)
        if hit is not None:
            return wire[:2] + hit
        try:
            query = dns.message.from_wire(wire)
        except dns.message.ShortHeader:
            return None
        except dns.exception.DNSException:
            return _header_only(wire, dns.rcode.FORMERR)
        if query.flags & dns.flags.QR:
            return None
        size = udp_size(query) if udp else 65535
        response = dns.message.make_response(query, recursion_available=True, our_payload=UDP_MAX_SIZE)
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            rcode = dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY else dns.rcode.FORMERR
            response.set_rcode(rcode)
            return render(response, size)
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN or question.rdtype in ZONE_TRANSFERS:
            response.set_rcode(dns.rcode.REFUSED)
            return render(response, size)
        reply = resolve(question.name, question.rdtype, self.index, self.zone)
        if reply is None:
            return self._forward(response, question, size)
        _fill(response, reply, authoritative=True)
        if reply.chase is not None:
            return self._chase(response, reply.chase, question.rdtype, size)
        return self.answers.put(key, response, size)

    async def _forward(self, response: dns.message.Message, question: dns.rrset.RRset, size: int) -> bytes:
        answer = await self.forwarder.lookup(question.name, question.rdtype, question.rdclass)
        if answer is None:
            response.set_rcode(dns.rcode.SERVFAIL)
        else:
            response.set_rcode(answer.rcode())
            response.answer, response.authority = answer.answer, answer.authority
            response.additional = answer.additional
        return render(response, size)

    async def _chase(self, response: dns.message.Message, target: Any, rdtype: int, size: int) -> bytes:
        """An ExternalName's out-of-zone target: its records follow the CNAME, as CoreDNS's upstream
        lookup adds them; without an upstream answer the CNAME alone goes back."""
        if rdtype != dns.rdatatype.CNAME:
            answer = await self.forwarder.lookup(target, rdtype)
            if answer is not None and answer.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                response.answer.extend(answer.answer)
                response.set_rcode(answer.rcode())
                if not answer.answer:
                    response.authority = answer.authority
        return render(response, size)

    # ----- transports -----------------------------------------------------------------------------

    def _datagram(self, transport: asyncio.DatagramTransport, data: bytes, addr: Any) -> None:
        result = self.handle(data, udp=True)
        if result is None:
            return
        if isinstance(result, bytes):
            transport.sendto(result, addr)
            return

        def send(task: asyncio.Task[bytes]) -> None:
            if not task.cancelled() and task.exception() is None and not transport.is_closing():
                transport.sendto(task.result(), addr)

        self._spawn(result).add_done_callback(send)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tcp_writers.add(writer)
        try:
            while True:
                header = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                data = await reader.readexactly(int.from_bytes(header, "big"))
                result = self.handle(data, udp=False)
                if result is None:
                    break
                answer = result if isinstance(result, bytes) else await result
                writer.write(len(answer).to_bytes(2, "big") + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            self._tcp_writers.discard(writer)
            writer.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.transport is not None:
            try:
                self.server._datagram(self.transport, data, addr)
            except Exception:
                log.exception("cluster DNS: query failed")

    def error_received(self, exc: Exception) -> None:
        log.debug("cluster DNS: UDP error %s", exc)


# ----- pure helpers ------------------------------------------------------------------------------

def parse_listen(text: str) -> list[tuple[str, int]]:
    """"127.0.0.1:10053,[::1]:10053" -> [("127.0.0.1", 10053), ("::1", 10053)]."""
    found = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        upstream = Upstream.parse(item)
        found.append((upstream.host, upstream.port))
    return found


def udp_size(query: dns.message.Message) -> int:
    if query.edns < 0:
        return UDP_DEFAULT_SIZE
    return max(UDP_DEFAULT_SIZE, min(query.payload, UDP_MAX_SIZE))


def _fill(response: dns.message.Message, reply: Reply, *, authoritative: bool) -> None:
    response.set_rcode(reply.rcode)
    if authoritative:
        response.flags |= dns.flags.AA
    response.answer = list(reply.answer)
    response.authority = list(reply.authority)
    response.additional = list(reply.additional)


def _newest(put: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    return lambda _old, new: put(new)


def _header_only(wire: bytes, rcode: int) -> bytes | None:
    """A bare response (ID and opcode copied) for a query too broken to parse."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    flags = 0x8000 | (wire[2] & 0x79) << 8 | 0x80 | rcode  # QR, opcode + RD copied, RA
    return wire[:2] + flags.to_bytes(2, "big") + bytes(8)

"""The fallback proxy when nftables cannot be used (no `nft`, not root): asyncio listeners that
relay each TCP connection / UDP flow to an endpoint, as the old userspace kube-proxy did.

What it can serve: a listener is bound for every (address, protocol, port) that is local to this
host: NodePorts on each node address, and a ClusterIP, externalIP or LoadBalancer address only
when that address is assigned here (e.g. 127.x addresses for a non-root single-host setup); others
are skipped (logged once), since nothing can capture traffic to a foreign address without the
kernel's help. Ports below 1024 need root; those are skipped with a warning too.

Semantics kept from the nftables data path: only ports with usable endpoints get a listener, so a
port without any refuses connections at once; endpoints are spread round-robin (Cluster/Local
policy and the serving-terminating fallback as in serviceports.categorize); sessionAffinity
ClientIP pins a client address to its endpoint until the timeout passes without traffic. A failed
connect tries the next endpoint. Changing endpoints affects new connections only.
`Chooser` is the pure part (choice + affinity, clock injected); the rest is socket plumbing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

from kubelite.proxy.backends import PortsByService
from kubelite.proxy.model import NodeContext
from kubelite.proxy.serviceports import Endpoint, ServicePort, categorize

log = logging.getLogger(__name__)

ListenKey = tuple[str, str, int]  # (address, protocol, port)
CONNECT_TIMEOUT = 3.0
UDP_IDLE_TIMEOUT = 30.0
BUFFER = 256 * 1024


@dataclass
class Chooser:
    """Which endpoint a new connection from a client goes to. Mutable: `update` swaps endpoints
    in place so live listeners see them on their next connection."""

    endpoints: tuple[Endpoint, ...] = ()
    affinity_timeout: int = 0
    clock: Callable[[], float] = time.monotonic
    _next: int = 0
    _sticky: dict[str, tuple[Endpoint, float]] = field(default_factory=dict)

    def update(self, endpoints: tuple[Endpoint, ...], affinity_timeout: int) -> None:
        if affinity_timeout != self.affinity_timeout:
            self._sticky.clear()
        self.endpoints, self.affinity_timeout = endpoints, affinity_timeout
        self._sticky = {c: v for c, v in self._sticky.items() if v[0] in endpoints}

    def choose(self, client_ip: str, *, exclude: Iterable[Endpoint] = ()) -> Endpoint | None:
        excluded = set(exclude)
        candidates = [e for e in self.endpoints if e not in excluded]
        if not candidates:
            return None
        now = self.clock()
        pinned = self._sticky.get(client_ip) if self.affinity_timeout else None
        if pinned and pinned[1] > now and pinned[0] in candidates:
            chosen = pinned[0]
        else:
            chosen = candidates[self._next % len(candidates)]
            self._next += 1
        if self.affinity_timeout:
            self._sticky[client_ip] = (chosen, now + self.affinity_timeout)
        return chosen


def listen_targets(ports: Iterable[ServicePort], ctx: NodeContext) -> dict[ListenKey, tuple[ServicePort, tuple[Endpoint, ...]]]:
    """Every address this node should answer on, with the endpoints behind it (pure)."""
    out: dict[ListenKey, tuple[ServicePort, tuple[Endpoint, ...]]] = {}
    for sp in ports:
        cat = categorize(sp, ctx.node_name)
        internal = cat.local if sp.internal_local else cat.cluster
        external = cat.local if sp.external_local else cat.cluster
        keys = [((sp.cluster_ip, sp.protocol, sp.port), internal)]
        keys += [((ip, sp.protocol, sp.port), external) for ip in sp.external_ips + sp.lb_ips]
        if sp.node_port:
            keys += [((ip, sp.protocol, sp.node_port), external) for ip in ctx.node_ips]
        for key, endpoints in keys:
            if endpoints and sp.protocol in ("tcp", "udp"):
                out[key] = (sp, endpoints)
    return out


class _Listener:
    def __init__(self, key: ListenKey, chooser: Chooser) -> None:
        self.key, self.chooser = key, chooser
        self.server: asyncio.AbstractServer | None = None
        self.udp: _UdpFront | None = None

    async def open(self) -> None:
        ip, protocol, port = self.key
        if protocol == "tcp":
            self.server = await asyncio.start_server(self._relay_tcp, ip, port, reuse_address=True)
        else:
            loop = asyncio.get_running_loop()
            _, front = await loop.create_datagram_endpoint(lambda: _UdpFront(self.chooser), local_addr=(ip, port))
            self.udp = front

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
        if self.udp is not None:
            self.udp.close()

    async def _relay_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client_ip = str((writer.get_extra_info("peername") or ("", 0))[0])
        tried: list[Endpoint] = []
        while (endpoint := self.chooser.choose(client_ip, exclude=tried)) is not None:
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(endpoint.ip, endpoint.port), CONNECT_TIMEOUT)
            except (TimeoutError, OSError):
                tried.append(endpoint)
                continue
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            up_writer.close()
            break
        writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except Exception:  # a reset on either side ends both directions
        writer.close()


class _UdpFront(asyncio.DatagramProtocol):
    """One socket on the service address; one upstream socket per client address."""

    def __init__(self, chooser: Chooser) -> None:
        self.chooser = chooser
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple[str, int], _UdpFlow] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        flow = self.flows.get(addr)
        if flow is None:
            endpoint = self.chooser.choose(addr[0])
            if endpoint is None:
                return
            flow = self.flows[addr] = _UdpFlow(self, addr, endpoint)
            asyncio.get_running_loop().create_task(flow.open(data))
            return
        flow.send(data)

    def close(self) -> None:
        for flow in list(self.flows.values()):
            flow.close()
        if self.transport is not None:
            self.transport.close()


class _UdpFlow(asyncio.DatagramProtocol):
    def __init__(self, front: _UdpFront, client: tuple[str, int], endpoint: Endpoint) -> None:
        self.front, self.client, self.endpoint = front, client, endpoint
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.idle: asyncio.TimerHandle | None = None

    async def open(self, first: bytes) -> None:
        self.pending.append(first)
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: self, remote_addr=(self.endpoint.ip, self.endpoint.port))
        except OSError:
            self.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        for data in self.pending:
            self.transport.sendto(data)
        self.pending.clear()
        self._touch()

    def send(self, data: bytes) -> None:
        if self.transport is None:
            self.pending.append(data)
            return
        self.transport.sendto(data)
        self._touch()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.front.transport is not None:
            self.front.transport.sendto(data, self.client)
        self._touch()

    def _touch(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.idle = asyncio.get_running_loop().call_later(UDP_IDLE_TIMEOUT, self.close)

    def close(self) -> None:
        self.front.flows.pop(self.client, None)
        if self.idle is not None:
            self.idle.cancel()
        if self.transport is not None:
            self.transport.close()


class UserspaceBackend:
    name = "userspace"

    def __init__(self) -> None:
        self.listeners: dict[ListenKey, _Listener] = {}
        self._unbindable: dict[ListenKey, int] = {}  # key -> errno, so each is logged once

    async def available(self) -> str | None:
        return None

    async def sync(self, ports: PortsByService, *, ctx: NodeContext, dirty: Iterable[str] | None) -> None:
        targets = listen_targets((sp for group in ports.values() for sp in group), ctx)
        for key in [k for k in self.listeners if k not in targets]:
            await self.listeners.pop(key).close()
        for key, (sp, endpoints) in targets.items():
            listener = self.listeners.get(key)
            if listener is None:
                listener = await self._open(key)
                if listener is None:
                    continue
            listener.chooser.update(endpoints, sp.affinity_timeout)

    async def _open(self, key: ListenKey) -> _Listener | None:
        listener = _Listener(key, Chooser())
        try:
            await listener.open()
        except OSError as exc:
            if self._unbindable.get(key) != exc.errno:
                level = logging.DEBUG if exc.errno == errno.EADDRNOTAVAIL else logging.WARNING
                log.log(level, "userspace proxy: cannot listen on %s %s:%d: %s", key[1], key[0], key[2], exc)
                self._unbindable[key] = exc.errno or 0
            return None
        self._unbindable.pop(key, None)
        self.listeners[key] = listener
        return listener

    async def cleanup(self) -> None:
        for listener in self.listeners.values():
            await listener.close()
        self.listeners.clear()

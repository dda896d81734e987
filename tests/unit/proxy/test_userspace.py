"""The userspace fallback: endpoint choice and affinity (pure), which addresses it listens on
(pure), and real TCP/UDP relaying on loopback addresses (127.0.0.0/8 is all local, so no root)."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from kubelite.proxy.model import NodeContext
from kubelite.proxy.serviceports import Endpoint, ServicePort
from kubelite.proxy.userspace import Chooser, UserspaceBackend, listen_targets

A, B = Endpoint("127.0.1.2", 1), Endpoint("127.0.1.3", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_chooser_round_robin_and_exclusion() -> None:
    chooser = Chooser((A, B))
    assert [chooser.choose("c") for _ in range(4)] == [A, B, A, B]
    assert chooser.choose("c", exclude=[A]) == B
    assert chooser.choose("c", exclude=[A, B]) is None
    assert Chooser().choose("c") is None


def test_chooser_affinity_sticks_until_idle_timeout() -> None:
    clock = Clock()
    chooser = Chooser((A, B), affinity_timeout=10, clock=clock)
    first = chooser.choose("c1")
    assert all(chooser.choose("c1") == first for _ in range(5))
    assert chooser.choose("c2") != first  # a new client still rotates
    clock.now += 9
    assert chooser.choose("c1") == first  # each use refreshes the timeout
    clock.now += 11
    chooser.choose("c1")  # expired: chosen afresh (round robin moves on)
    chooser.update((B,), 10)  # its endpoint gone: pinned to what remains
    assert chooser.choose("c1") == B


def test_listen_targets_cover_cluster_ip_node_ports_and_lb_with_policies() -> None:
    sp = ServicePort("ns", "web", "http", "tcp", "127.0.2.1", 80, node_port=30080, lb_ips=("127.0.2.9",),
                     external_local=True, endpoints=(Endpoint("127.0.1.2", 8080, "n1"), Endpoint("127.0.1.3", 8080, "n2")))
    empty = ServicePort("ns", "none", "", "tcp", "127.0.2.2", 80, node_port=30081)
    sctp = ServicePort("ns", "s", "", "sctp", "127.0.2.3", 9, endpoints=(A,))
    targets = listen_targets([sp, empty, sctp], NodeContext("n1", node_ips=("127.0.0.1",)))
    assert set(targets) == {("127.0.2.1", "tcp", 80), ("127.0.2.9", "tcp", 80), ("127.0.0.1", "tcp", 30080)}
    assert len(targets[("127.0.2.1", "tcp", 80)][1]) == 2  # internal: cluster policy
    assert [e.ip for e in targets[("127.0.0.1", "tcp", 30080)][1]] == ["127.0.1.2"]  # external: local only


# ----- on the wire -----------------------------------------------------------------------------------

def free_port(ip: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def backends() -> AsyncIterator[list[Endpoint]]:
    """Two TCP servers answering their own name, and UDP echo servers prefixing it."""
    port = free_port()
    servers, transports = [], []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        name = writer.get_extra_info("sockname")[0]
        await reader.read(100)
        writer.write(name.encode())
        await writer.drain()
        writer.close()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(self.transport.get_extra_info("sockname")[0].encode() + b":" + data, addr)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    for ep in (A, B):
        servers.append(await asyncio.start_server(answer, ep.ip, port))
        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=(ep.ip, port))
        transports.append(transport)
    yield [Endpoint(A.ip, port, "n1"), Endpoint(B.ip, port, "n2")]
    for server in servers:
        server.close()
    for transport in transports:
        transport.close()


async def ask(ip: str, port: int, *, source: str = "127.0.0.1") -> str:
    reader, writer = await asyncio.open_connection(ip, port, local_addr=(source, 0))
    writer.write(b"hi")
    await writer.drain()
    data = await reader.read(100)
    writer.close()
    return data.decode()


async def test_tcp_spreads_sticks_follows_endpoint_changes_and_refuses_without_endpoints(
        backends: list[Endpoint]) -> None:
    port, node_port = free_port("127.0.2.1"), free_port()
    sp = ServicePort("ns", "web", "http", "tcp", "127.0.2.1", port, node_port=node_port, endpoints=tuple(backends))
    ctx = NodeContext("n1", node_ips=("127.0.0.1",))
    proxy = UserspaceBackend()
    try:
        await proxy.sync({"ns/web": [sp]}, ctx=ctx, dirty=None)
        seen = Counter([await ask("127.0.2.1", port) for _ in range(10)])
        assert seen == {A.ip: 5, B.ip: 5}
        assert await ask("127.0.0.1", node_port) in (A.ip, B.ip)

        sticky = ServicePort(**{**sp.__dict__, "affinity_timeout": 60})
        await proxy.sync({"ns/web": [sticky]}, ctx=ctx, dirty={"ns/web"})
        assert len({await ask("127.0.2.1", port, source="127.0.3.1") for _ in range(6)}) == 1

        one = ServicePort(**{**sp.__dict__, "endpoints": (backends[1],)})
        await proxy.sync({"ns/web": [one]}, ctx=ctx, dirty={"ns/web"})
        assert {await ask("127.0.2.1", port) for _ in range(4)} == {B.ip}

        none = ServicePort(**{**sp.__dict__, "endpoints": ()})
        await proxy.sync({"ns/web": [none]}, ctx=ctx, dirty={"ns/web"})
        with pytest.raises(ConnectionRefusedError):
            await ask("127.0.2.1", port)
    finally:
        await proxy.cleanup()
    assert proxy.listeners == {}


async def test_a_dead_endpoint_is_skipped(backends: list[Endpoint]) -> None:
    port = free_port("127.0.2.1")
    dead = Endpoint("127.0.1.9", free_port("127.0.1.9"))
    sp = ServicePort("ns", "web", "http", "tcp", "127.0.2.1", port, endpoints=(dead, backends[0]))
    proxy = UserspaceBackend()
    try:
        await proxy.sync({"ns/web": [sp]}, ctx=NodeContext("n1"), dirty=None)
        assert {await ask("127.0.2.1", port) for _ in range(4)} == {A.ip}
    finally:
        await proxy.cleanup()


async def test_udp_flows_are_relayed_and_answered(backends: list[Endpoint]) -> None:
    port = free_port("127.0.2.1", socket.SOCK_DGRAM)
    sp = ServicePort("ns", "dns", "d", "udp", "127.0.2.1", port, endpoints=tuple(backends))
    proxy = UserspaceBackend()
    loop = asyncio.get_running_loop()
    try:
        await proxy.sync({"ns/dns": [sp]}, ctx=NodeContext("n1"), dirty=None)
        answers = []
        for i in range(4):  # four client sockets: four flows, spread round robin
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.setblocking(False)
                client.bind(("127.0.0.1", 0))
                await loop.sock_sendto(client, f"q{i}".encode(), ("127.0.2.1", port))
                data = await asyncio.wait_for(loop.sock_recv(client, 100), 2)
                answers.append(data.decode())
        assert sorted(answers) == sorted([f"{A.ip}:q0", f"{B.ip}:q1", f"{A.ip}:q2", f"{B.ip}:q3"])
    finally:
        await proxy.cleanup()


async def test_addresses_that_are_not_local_are_skipped(backends: list[Endpoint]) -> None:
    sp = ServicePort("ns", "web", "http", "tcp", "198.19.250.77", 18080, endpoints=tuple(backends))
    proxy = UserspaceBackend()
    await proxy.sync({"ns/web": [sp]}, ctx=NodeContext("n1"), dirty=None)
    assert proxy.listeners == {}
    await proxy.cleanup()

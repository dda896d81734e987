"""An offline cluster's DNS (`--no-dns-forward`): other names fail at once, nothing is forwarded."""

from __future__ import annotations

import asyncio

import dns.asyncquery
import dns.message
import dns.rcode

from kubelite.dns.server import DnsServer


def test_names_outside_the_cluster_get_servfail_without_a_forward() -> None:
    async def body() -> int:
        server = DnsServer(None, listen=[("127.0.0.1", 0)], upstreams=[])
        await server.start()
        try:
            assert server.forwarder.upstreams == []
            query = dns.message.make_query("example.org.", "A")
            reply = await dns.asyncquery.udp(query, "127.0.0.1", port=server.addresses[0][1], timeout=5)
            return int(reply.rcode())
        finally:
            await server.stop()

    assert asyncio.run(body()) == dns.rcode.SERVFAIL

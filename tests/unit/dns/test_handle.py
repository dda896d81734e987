"""`DnsServer.handle` without sockets: wire in, wire out (the answer cache, odd queries)."""

from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass

from kubelite.dns.index import ClusterIndex
from kubelite.dns.server import DnsServer, parse_listen

NAME = "web.default.svc.cluster.local."


def server_with(ip: str) -> tuple[DnsServer, ClusterIndex]:
    index = ClusterIndex()
    index.put_service({"metadata": {"name": "web", "namespace": "default"},
                       "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]}})
    return DnsServer(None, listen=[], index=index, upstreams=[]), index


def ask(server: DnsServer, query: dns.message.Message) -> dns.message.Message:
    wire = server.handle(query.to_wire(), udp=True)
    assert isinstance(wire, bytes)
    answer = dns.message.from_wire(wire)
    assert answer.id == query.id
    return answer


def addresses(message: dns.message.Message) -> list[str]:
    return [rd.to_text() for rrset in message.answer for rd in rrset]


def test_repeated_questions_are_answered_from_the_cache_until_the_index_changes() -> None:
    server, index = server_with("198.19.0.20")
    first = ask(server, dns.message.make_query(NAME, "A"))
    assert addresses(first) == ["198.19.0.20"] and first.flags & dns.flags.AA
    again = ask(server, dns.message.make_query(NAME, "A"))  # another ID, same bytes otherwise
    assert addresses(again) == ["198.19.0.20"] and len(server.answers) == 1
    index.put_service({"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": "198.19.0.21"}})
    assert addresses(ask(server, dns.message.make_query(NAME, "A"))) == ["198.19.0.21"]
    index.delete_service({"metadata": {"name": "web", "namespace": "default"}})
    assert ask(server, dns.message.make_query(NAME, "A")).rcode() == dns.rcode.NXDOMAIN


def test_edns_queries_get_edns_answers() -> None:
    server, _ = server_with("198.19.0.20")
    answer = ask(server, dns.message.make_query(NAME, "A", use_edns=0, payload=4096))
    assert answer.edns == 0 and answer.payload == 1232


def test_odd_queries() -> None:
    server, _ = server_with("198.19.0.20")
    assert ask(server, dns.message.make_query("cluster.local.", "AXFR")).rcode() == dns.rcode.REFUSED
    chaos = dns.message.make_query("version.bind.", "TXT", rdclass=dns.rdataclass.CH)
    assert ask(server, chaos).rcode() == dns.rcode.REFUSED
    notify = dns.message.make_query(NAME, "A")
    notify.set_opcode(dns.opcode.NOTIFY)
    assert ask(server, notify).rcode() == dns.rcode.NOTIMP
    response = dns.message.make_response(dns.message.make_query(NAME, "A"))
    assert server.handle(response.to_wire(), udp=True) is None  # answers are not answered


def test_names_elsewhere_go_upstream_and_fail_without_one() -> None:
    server, _ = server_with("198.19.0.20")
    pending = server.handle(dns.message.make_query("example.com.", "A").to_wire(), udp=True)
    assert pending is not None and not isinstance(pending, bytes)
    wire = asyncio.run(_await(pending))
    assert dns.message.from_wire(wire).rcode() == dns.rcode.SERVFAIL


async def _await(pending: object) -> bytes:
    result = await pending  # type: ignore[misc]
    assert isinstance(result, bytes)
    return result


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:10053, [::1]:53") == [("127.0.0.1", 10053), ("::1", 53)]
    assert parse_listen("") == []


def test_several_addresses_take_turns_first() -> None:
    server, index = server_with("198.19.0.20")
    index.put_service({"metadata": {"name": "db", "namespace": "default"}, "spec": {"clusterIP": "None"}})
    index.put_slice({"metadata": {"name": "db-1", "namespace": "default",
                                  "labels": {"kubernetes.io/service-name": "db"}}, "addressType": "IPv4",
                     "endpoints": [{"addresses": [f"198.18.0.{n}"]} for n in (1, 2, 3)]})
    answers = [addresses(ask(server, dns.message.make_query("db.default.svc.cluster.local.", "A")))
               for _ in range(6)]
    assert all(sorted(a) == ["198.18.0.1", "198.18.0.2", "198.18.0.3"] for a in answers)
    assert sorted(a[0] for a in answers[:3]) == ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
    assert answers[3:] == answers[:3]  # round-robin over the cached rotations

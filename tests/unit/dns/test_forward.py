"""Forwarding decisions, pure: which resolv.conf nameservers are safe upstreams, the answer cache,
and how the server renders a response that does not fit a datagram."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from kubelite.dns.answers import render
from kubelite.dns.forward import AnswerCache, Upstream, cache_ttl, upstreams_from_resolv_conf
from kubelite.dns.server import _header_only, udp_size

RESOLV = """# generated
search example.internal
nameserver 127.0.0.53
nameserver 192.0.2.1   # corporate
nameserver 198.19.0.10
nameserver fe80::1%eth0
nameserver bogus
options edns0
"""


def test_upstreams_skip_addresses_that_lead_back_to_us() -> None:
    found = upstreams_from_resolv_conf(RESOLV, listen=[("127.0.0.1", 10053)], own_ips=["198.19.0.10"])
    assert found == [Upstream("127.0.0.53"), Upstream("192.0.2.1"), Upstream("fe80::1")]
    on_53 = upstreams_from_resolv_conf("nameserver 127.0.0.1\nnameserver 127.0.0.53\n",
                                       listen=[("127.0.0.1", 53)])
    assert on_53 == [Upstream("127.0.0.53")]
    wildcard = upstreams_from_resolv_conf(RESOLV, listen=[("0.0.0.0", 53)])
    assert wildcard == [Upstream("192.0.2.1"), Upstream("198.19.0.10"), Upstream("fe80::1")]


def test_upstream_parse() -> None:
    assert Upstream.parse("127.0.0.1:5353") == Upstream("127.0.0.1", 5353)
    assert Upstream.parse("[::1]:5353") == Upstream("::1", 5353)
    assert Upstream.parse("::1") == Upstream("::1") and Upstream.parse(" 10.0.0.1 ") == Upstream("10.0.0.1")


def answer(name: str, ttl: int, rcode: dns.rcode.Rcode = dns.rcode.NOERROR) -> dns.message.Message:
    message = dns.message.make_response(dns.message.make_query(name, "A"))
    message.set_rcode(rcode)
    if rcode == dns.rcode.NOERROR:
        message.answer.append(dns.rrset.from_text(name, ttl, "IN", "A", "192.0.2.7"))
    else:
        message.authority.append(dns.rrset.from_text("test.", 3600, "IN", "SOA",
                                                     f"ns.test. host.test. 1 2 3 4 {ttl}"))
    return message


def test_cache_ttl_rules() -> None:
    assert cache_ttl(answer("a.test.", 60)) == 60
    assert cache_ttl(answer("a.test.", 86400)) == 300  # capped
    assert cache_ttl(answer("a.test.", 10, dns.rcode.NXDOMAIN)) == 10  # SOA minimum
    assert cache_ttl(answer("a.test.", 900, dns.rcode.NXDOMAIN)) == 30
    assert cache_ttl(answer("a.test.", 60, dns.rcode.SERVFAIL)) == 0


def test_cache_ages_ttls_expires_and_evicts() -> None:
    cache = AnswerCache(capacity=2)
    key = ("a.test.", 1, 1)
    cache.put(key, answer("a.test.", 60), now=100.0)
    hit = cache.get(key, now=110.0)
    assert hit is not None and hit.answer[0].ttl == 50
    assert cache.get(key, now=161.0) is None and len(cache) == 0
    for n in range(3):
        cache.put((f"{n}.test.", 1, 1), answer(f"{n}.test.", 60), now=0.0)
    assert len(cache) == 2 and cache.get(("0.test.", 1, 1), now=1.0) is None


def test_udp_size_follows_edns() -> None:
    assert udp_size(dns.message.make_query("a.test.", "A")) == 512
    assert udp_size(dns.message.make_query("a.test.", "A", use_edns=0, payload=4096)) == 1232
    assert udp_size(dns.message.make_query("a.test.", "A", use_edns=0, payload=100)) == 512


def test_render_truncates_what_does_not_fit() -> None:
    response = dns.message.make_response(dns.message.make_query("big.test.", "A"))
    response.answer.append(dns.rrset.from_text_list("big.test.", 5, "IN", "A",
                                                    [f"192.0.2.{n}" for n in range(1, 60)]))
    wire = render(response, 512)
    parsed = dns.message.from_wire(wire)
    assert len(wire) <= 512 and parsed.flags & dns.flags.TC and not parsed.answer


def test_unparseable_query_gets_formerr_with_its_id() -> None:
    wire = _header_only(b"\x12\x34\x01\x00" + b"\x00\x01" + bytes(6) + b"\xff", dns.rcode.FORMERR)
    assert wire is not None
    parsed = dns.message.from_wire(wire)
    assert parsed.id == 0x1234 and parsed.rcode() == dns.rcode.FORMERR and parsed.flags & dns.flags.QR
    assert _header_only(b"\x00", dns.rcode.FORMERR) is None

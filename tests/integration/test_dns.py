"""Cluster DNS in a real server: Services, EndpointSlices and Pods created through the API, queries
sent with dnspython (dns.asyncquery, dns.asyncresolver) to the server's DNS on 127.0.0.1.

No kubelets: the tests play the kubelet (pods bound to a node, `pods/status` patched with an IP and
a Ready condition) and the endpoint controllers build the slices. Forwarding never leaves the
machine: the server's upstream is a fake DNS server on 127.0.0.1 run by this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest

from kubelite.client import Client, Connection
from kubelite.client.resources import ENDPOINTSLICES, NODES, PODS, SERVICES
from kubelite.objects.errors import NotFound
from tests import support
from tests.integration.conftest import ServerThread, free_port

Obj = dict[str, Any]
ZONE = "cluster.local"
BIG = 60  # A records: more than a 512-byte datagram holds


class FakeUpstream:
    """The host's resolver, as far as the cluster DNS can tell: example.test and big.example.test
    have addresses, every other name is NXDOMAIN. Counts the questions it gets."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.asked: list[str] = []
        self.records = {"example.test.": ["192.0.2.80"],
                        "big.example.test.": [f"192.0.2.{n}" for n in range(1, BIG + 1)]}
        self._transport: Any = None
        self._tcp: asyncio.Server | None = None

    def answer(self, wire: bytes, *, max_size: int) -> bytes:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        self.asked.append(question.name.to_text().lower())
        response = dns.message.make_response(query, recursion_available=True)
        ips = self.records.get(question.name.to_text().lower())
        if ips is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(dns.rrset.from_text("test.", 60, "IN", "SOA",
                                                          "ns.test. host.test. 1 7200 1800 86400 60"))
        elif question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", "A", ips))
        try:
            return response.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            response.answer = []
            response.flags |= dns.flags.TC
            return response.to_wire()

    async def start(self) -> None:
        upstream = self

        class Protocol(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(upstream.answer(data, max_size=512), addr)

        async def serve_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                size = int.from_bytes(await reader.readexactly(2), "big")
                reply = upstream.answer(await reader.readexactly(size), max_size=65535)
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
            writer.close()

        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", self.port))
        self._tcp = await asyncio.start_server(serve_tcp, "127.0.0.1", self.port)

    async def stop(self) -> None:
        self._transport.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()


class Cluster:
    def __init__(self, srv: ServerThread, upstream: FakeUpstream) -> None:
        self.srv, self.upstream = srv, upstream
        assert srv.runtime.socket_path is not None
        self.client = Client(Connection.unix(srv.runtime.socket_path))
        self.dns_port = srv.runtime.dns.addresses[0][1]

    def api(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.srv.call(getattr(self.client, method)(*args, **kwargs))

    def namespace(self) -> str:
        name = f"dns-{uuid.uuid4().hex[:8]}"
        self.srv.kubectl("create", "namespace", name)
        return name

    def ready_pod(self, ns: str, name: str, ip: str, *, labels: Obj, ready: bool = True, **spec: Any) -> None:
        body = {"metadata": {"name": name, "labels": labels},
                "spec": {"nodeName": "n1", **spec, "containers": [{"name": "app", "image": "nginx"}]}}
        self.api("create", PODS, body, ns)
        status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                  "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
        self.api("patch", PODS, name, {"status": status}, ns, subresource="status")

    def query(self, name: str, rdtype: str = "A", *, tcp: bool = False, edns: bool = False) -> dns.message.Message:
        message = dns.message.make_query(name, rdtype, use_edns=0 if edns else False)
        send = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
        result: dns.message.Message = self.srv.call(send(message, "127.0.0.1", port=self.dns_port, timeout=5))
        return result

    def resolver(self, ns: str) -> dns.asyncresolver.Resolver:
        """As a pod in `ns` resolves: the kubelet's search path and ndots:5."""
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], self.dns_port
        resolver.search = [dns.name.from_text(f"{ns}.svc.{ZONE}"), dns.name.from_text(f"svc.{ZONE}"),
                           dns.name.from_text(ZONE)]
        resolver.ndots, resolver.use_search_by_default, resolver.cache = 5, True, None
        return resolver

    def resolve(self, ns: str, name: str, rdtype: str = "A") -> list[str]:
        answer = self.srv.call(self.resolver(ns).resolve(name, rdtype, lifetime=5))
        return sorted(rd.to_text() for rd in answer)


def wait_for(check: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    return support.wait_for(check, timeout=timeout, what=what, interval=0.02)


def addresses(message: dns.message.Message, section: str = "answer") -> list[str]:
    return sorted(rd.to_text() for rrset in getattr(message, section) if rrset.rdtype == dns.rdatatype.A
                  for rd in rrset)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    upstream = FakeUpstream(free_port())
    # advertise a non-loopback address: Endpoints validation rejects 127.0.0.0/8 (as upstream's does)
    srv = ServerThread(tmp_path_factory.mktemp("dns"), controllers="endpoints,endpointslice",
                       advertise_address="198.19.128.1", dns=True, dns_listen="127.0.0.1:0",
                       dns_upstreams=(f"127.0.0.1:{upstream.port}",))
    srv.start()
    srv.call(upstream.start())
    c = Cluster(srv, upstream)
    try:
        c.api("create", NODES, {"metadata": {"name": "n1"}})
        yield c
    finally:
        srv.call(c.client.close())
        srv.call(upstream.stop())
        srv.stop()


def test_cluster_ip_service_a_and_srv(cluster: Cluster) -> None:
    ns = cluster.namespace()
    service = cluster.api("create", SERVICES, {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}, ns)
    cluster_ip = service["spec"]["clusterIP"]
    name = f"web.{ns}.svc.{ZONE}"
    reply = wait_for(lambda: (r := cluster.query(name)).answer and r, what="web's A record")
    assert addresses(reply) == [cluster_ip] and reply.answer[0].ttl == 5
    assert reply.flags & dns.flags.AA
    srv = cluster.query(f"_http._tcp.{name}", "SRV")
    assert [rd.to_text() for rd in srv.answer[0]] == [f"0 100 80 {name}."]
    assert addresses(srv, "additional") == [cluster_ip]  # the target's address rides along
    aaaa = cluster.query(name, "AAAA")
    assert aaaa.rcode() == dns.rcode.NOERROR and not aaaa.answer
    assert aaaa.authority[0].rdtype == dns.rdatatype.SOA
    # the search path, client-side as in a pod: short and namespace-qualified names both work
    assert cluster.resolve(ns, "web") == [cluster_ip]
    assert cluster.resolve("default", f"web.{ns}") == [cluster_ip]

    cluster.api("delete", SERVICES, "web", ns)
    wait_for(lambda: cluster.query(name).rcode() == dns.rcode.NXDOMAIN, what="web gone from DNS")


def test_headless_service_endpoints_and_srv(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.api("create", SERVICES, {"metadata": {"name": "db"}, "spec": {
        "clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "pg", "port": 5432}]}}, ns)
    cluster.ready_pod(ns, "db-0", "198.18.1.10", labels={"app": "db"}, hostname="db-0", subdomain="db")
    cluster.ready_pod(ns, "db-1", "198.18.1.11", labels={"app": "db"})
    cluster.ready_pod(ns, "db-2", "198.18.1.12", labels={"app": "db"}, ready=False)
    name = f"db.{ns}.svc.{ZONE}"
    wait_for(lambda: addresses(cluster.query(name)) == ["198.18.1.10", "198.18.1.11"],
             what="ready endpoints in DNS")
    assert addresses(cluster.query(f"db-0.{name}")) == ["198.18.1.10"]
    assert addresses(cluster.query(f"198-18-1-11.{name}")) == ["198.18.1.11"]
    srv = cluster.query(f"_pg._tcp.{name}", "SRV")
    assert sorted(rd.to_text() for rd in srv.answer[0]) == [
        f"0 50 5432 198-18-1-11.{name}.", f"0 50 5432 db-0.{name}."]
    # readiness flips show up
    cluster.api("patch", PODS, "db-1", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, ns,
                subresource="status")
    wait_for(lambda: addresses(cluster.query(name)) == ["198.18.1.10"], what="db-1 out of DNS")
    # the pod's own record
    assert addresses(cluster.query(f"198-18-1-12.{ns}.pod.{ZONE}")) == ["198.18.1.12"]
    assert cluster.query(f"198-18-1-99.{ns}.pod.{ZONE}").rcode() == dns.rcode.NXDOMAIN


def test_external_name_is_a_cname(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.api("create", SERVICES, {"metadata": {"name": "web"}, "spec": {
        "clusterIP": "None", "ports": [{"port": 80}]}}, ns)
    cluster.api("create", SERVICES, {"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "example.test"}}, ns)
    name = f"ext.{ns}.svc.{ZONE}"
    reply = wait_for(lambda: (r := cluster.query(name)).answer and r, what="ext's CNAME")
    assert [(r.rdtype, [rd.to_text() for rd in r]) for r in reply.answer] == [
        (dns.rdatatype.CNAME, ["example.test."]), (dns.rdatatype.A, ["192.0.2.80"])]  # chased upstream
    assert cluster.resolve(ns, "ext") == ["192.0.2.80"]
    cname = cluster.query(name, "CNAME")
    assert [rd.to_text() for rd in cname.answer[0]] == ["example.test."] and len(cname.answer) == 1


def test_unknown_cluster_names_are_nxdomain_with_soa(cluster: Cluster) -> None:
    before = len(cluster.upstream.asked)
    for name in (f"nope.default.svc.{ZONE}", f"x.{ZONE}", f"a.b.c.default.svc.{ZONE}"):
        reply = cluster.query(name)
        assert reply.rcode() == dns.rcode.NXDOMAIN, name
        assert [r.rdtype for r in reply.authority] == [dns.rdatatype.SOA]
    assert len(cluster.upstream.asked) == before  # the cluster zone never goes upstream
    soa = cluster.query(ZONE, "SOA").answer[0][0]
    assert soa.mname.to_text() == f"ns.dns.{ZONE}."
    assert addresses(cluster.query(f"ns.dns.{ZONE}")) == ["198.19.0.10"]


def test_other_names_are_forwarded_and_cached(cluster: Cluster) -> None:
    reply = cluster.query("example.test.")
    assert addresses(reply) == ["192.0.2.80"] and not reply.flags & dns.flags.AA
    asked = cluster.upstream.asked.count("example.test.")
    again = cluster.query("EXAMPLE.test.")
    assert addresses(again) == ["192.0.2.80"] and again.answer[0].ttl <= 60
    assert cluster.upstream.asked.count("example.test.") == asked  # from the cache
    missing = cluster.query("missing.test.")
    assert missing.rcode() == dns.rcode.NXDOMAIN and missing.authority[0].rdtype == dns.rdatatype.SOA
    # through the search path, as a pod with ndots:5 asks: cluster suffixes first, then upstream
    assert cluster.resolve("default", "example.test") == ["192.0.2.80"]


def test_large_answers_fall_back_to_tcp(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.api("create", SERVICES, {"metadata": {"name": "many"}, "spec": {
        "clusterIP": "None", "ports": [{"name": "http", "port": 80}]}}, ns)
    ips = [f"198.18.2.{n}" for n in range(1, BIG + 1)]
    cluster.api("create", ENDPOINTSLICES, {
        "metadata": {"name": "many-1", "labels": {"kubernetes.io/service-name": "many",
                                                  "endpointslice.kubernetes.io/managed-by": "test"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}, ns)
    name = f"many.{ns}.svc.{ZONE}"
    wait_for(lambda: len(addresses(cluster.query(name, tcp=True))) == BIG, what="60 endpoints in DNS")
    udp = cluster.query(name)
    assert udp.flags & dns.flags.TC and not udp.answer
    edns = cluster.query(name, edns=True)  # 1232 bytes hold 60 A records
    assert len(addresses(edns)) == BIG and not edns.flags & dns.flags.TC
    assert len(cluster.resolve(ns, "many")) == BIG
    # a large upstream answer: truncated from upstream over UDP, fetched over TCP, TC again to us
    assert cluster.query("big.example.test.").flags & dns.flags.TC
    assert len(addresses(cluster.query("big.example.test.", tcp=True))) == BIG


def test_kube_dns_service_and_cluster_info(cluster: Cluster) -> None:
    service = cluster.api("get", SERVICES, "kube-dns", "kube-system")
    assert service["spec"]["clusterIP"] == cluster.srv.config.dns_service_ip == "198.19.0.10"
    assert [(p["name"], p["port"], p["protocol"]) for p in service["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    out = cluster.srv.kubectl("cluster-info").stdout
    assert "Kubernetes control plane is running at" in out
    assert "CoreDNS is running at" in out and "/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy" in out
    kubernetes = cluster.query(f"kubernetes.default.svc.{ZONE}")
    assert addresses(kubernetes) == [cluster.srv.config.kubernetes_service_ip]
    with pytest.raises(NotFound):
        cluster.api("get", SERVICES, "coredns", "kube-system")

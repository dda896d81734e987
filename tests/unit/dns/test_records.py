"""Cluster DNS answers, pure: an index filled from API objects (dicts) -> `records.resolve`."""

from __future__ import annotations

from typing import Any

import dns.name
import dns.rcode
import dns.rdatatype as T
import dns.reversename
import pytest

from kubelite.dns.index import ClusterIndex
from kubelite.dns.records import Reply, Zone, dashed_ip, ip_from_label, resolve

ZONE = Zone.of("cluster.local", "198.19.0.10")
Obj = dict[str, Any]


def service(name: str, ns: str = "default", *, ip: str = "198.19.0.20", ports: list[Obj] | None = None,
            external: str = "") -> Obj:
    spec: Obj = {"ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}]}
    if external:
        spec.update(type="ExternalName", externalName=external)
    else:
        spec.update(type="ClusterIP", clusterIP=ip, clusterIPs=[ip])
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def endpoint_slice(name: str, svc: str, ns: str = "default", *, endpoints: list[Obj],
                   ports: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def ep(ip: str, *, hostname: str = "", ready: bool | None = True) -> Obj:
    entry: Obj = {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
    if hostname:
        entry["hostname"] = hostname
    return entry


def pod(name: str, ip: str, ns: str = "default", *, phase: str = "Running") -> Obj:
    return {"metadata": {"name": name, "namespace": ns}, "status": {"phase": phase, "podIP": ip,
                                                                    "podIPs": [{"ip": ip}]}}


@pytest.fixture
def index() -> ClusterIndex:
    idx = ClusterIndex()
    idx.put_service(service("web", ip="198.19.0.20", ports=[
        {"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"},
        {"port": 9000, "protocol": "TCP"}]))
    idx.put_service(service("db", ip="None"))
    idx.put_slice(endpoint_slice("db-1", "db", endpoints=[
        ep("198.18.1.2", hostname="db-0"), ep("198.18.1.3"), ep("198.18.1.4", ready=False),
        ep("198.18.1.5", ready=None)]))
    idx.put_service(service("empty", ip="None"))
    idx.put_service(service("ext", external="Example.Test."))
    idx.put_service(service("alias", external="web.default.svc.cluster.local"))
    idx.put_service(service("loop1", external="loop2.default.svc.cluster.local"))
    idx.put_service(service("loop2", external="loop1.default.svc.cluster.local"))
    idx.put_pod(pod("p1", "198.18.1.9"))
    idx.put_pod(pod("done", "198.18.1.10", phase="Succeeded"))
    return idx


def ask(index: ClusterIndex, name: str, rdtype: int = T.A) -> Reply:
    reply = resolve(dns.name.from_text(name), T.RdataType.make(rdtype), index, ZONE)
    assert reply is not None, f"{name} was not answered from the cluster zone"
    return reply


def texts(reply: Reply, section: str = "answer", rdtype: int | None = None) -> list[str]:
    return sorted(rd.to_text() for rrset in getattr(reply, section)
                  if rdtype is None or rrset.rdtype == rdtype for rd in rrset)


def test_cluster_ip_service(index: ClusterIndex) -> None:
    reply = ask(index, "web.default.svc.cluster.local")
    assert reply.rcode == dns.rcode.NOERROR and texts(reply) == ["198.19.0.20"]
    assert reply.answer[0].ttl == 5


def test_names_are_case_insensitive_and_keep_the_askers_case(index: ClusterIndex) -> None:
    reply = ask(index, "WEB.Default.SVC.cluster.local")
    assert texts(reply) == ["198.19.0.20"] and reply.answer[0].name.to_text() == "WEB.Default.SVC.cluster.local."


def test_aaaa_of_an_ipv4_service_is_nodata(index: ClusterIndex) -> None:
    reply = ask(index, "web.default.svc.cluster.local", T.AAAA)
    assert reply.rcode == dns.rcode.NOERROR and reply.answer == []
    assert [r.rdtype for r in reply.authority] == [T.SOA]


def test_headless_service_lists_ready_endpoints(index: ClusterIndex) -> None:
    reply = ask(index, "db.default.svc.cluster.local")
    assert texts(reply) == ["198.18.1.2", "198.18.1.3", "198.18.1.5"]  # not-ready .4 left out


def test_headless_endpoint_names(index: ClusterIndex) -> None:
    assert texts(ask(index, "db-0.db.default.svc.cluster.local")) == ["198.18.1.2"]
    assert texts(ask(index, "198-18-1-3.db.default.svc.cluster.local")) == ["198.18.1.3"]
    assert ask(index, "198-18-1-2.db.default.svc.cluster.local").rcode == dns.rcode.NXDOMAIN  # has a hostname
    assert ask(index, "198-18-1-4.db.default.svc.cluster.local").rcode == dns.rcode.NXDOMAIN  # not ready


def test_headless_service_without_ready_endpoints_is_nxdomain(index: ClusterIndex) -> None:
    assert ask(index, "empty.default.svc.cluster.local").rcode == dns.rcode.NXDOMAIN


def test_srv_for_named_ports_of_a_cluster_ip_service(index: ClusterIndex) -> None:
    reply = ask(index, "_http._tcp.web.default.svc.cluster.local", T.SRV)
    assert texts(reply) == ["0 100 80 web.default.svc.cluster.local."]
    assert texts(reply, "additional") == ["198.19.0.20"]
    assert texts(ask(index, "_dns._udp.web.default.svc.cluster.local", T.SRV)) == [
        "0 100 53 web.default.svc.cluster.local."]
    assert ask(index, "_dns._tcp.web.default.svc.cluster.local", T.SRV).rcode == dns.rcode.NXDOMAIN
    assert ask(index, "_http._tcp.web.default.svc.cluster.local").rcode == dns.rcode.NOERROR  # A: NODATA


def test_srv_of_the_service_name_lists_every_named_port(index: ClusterIndex) -> None:
    assert texts(ask(index, "web.default.svc.cluster.local", T.SRV)) == [
        "0 50 53 web.default.svc.cluster.local.", "0 50 80 web.default.svc.cluster.local."]


def test_srv_for_a_headless_service_targets_each_endpoint(index: ClusterIndex) -> None:
    reply = ask(index, "_http._tcp.db.default.svc.cluster.local", T.SRV)
    assert texts(reply) == ["0 33 8080 198-18-1-3.db.default.svc.cluster.local.",
                            "0 33 8080 198-18-1-5.db.default.svc.cluster.local.",
                            "0 33 8080 db-0.db.default.svc.cluster.local."]
    assert texts(reply, "additional") == ["198.18.1.2", "198.18.1.3", "198.18.1.5"]


def test_external_name_is_a_cname_to_be_chased_upstream(index: ClusterIndex) -> None:
    reply = ask(index, "ext.default.svc.cluster.local")
    assert texts(reply) == ["example.test."] and reply.chase == dns.name.from_text("example.test.")
    assert reply.chase is not None and ask(index, "ext.default.svc.cluster.local", T.CNAME).chase is None


def test_external_name_inside_the_cluster_is_chased_here(index: ClusterIndex) -> None:
    reply = ask(index, "alias.default.svc.cluster.local")
    assert [r.rdtype for r in reply.answer] == [T.CNAME, T.A] and reply.chase is None
    assert texts(reply, rdtype=T.A) == ["198.19.0.20"]
    nodata = ask(index, "alias.default.svc.cluster.local", T.AAAA)
    assert [r.rdtype for r in nodata.answer] == [T.CNAME] and [r.rdtype for r in nodata.authority] == [T.SOA]


def test_external_name_loop_is_servfail(index: ClusterIndex) -> None:
    assert ask(index, "loop1.default.svc.cluster.local").rcode == dns.rcode.SERVFAIL


def test_pod_records_need_a_pod_with_that_ip(index: ClusterIndex) -> None:
    assert texts(ask(index, "198-18-1-9.default.pod.cluster.local")) == ["198.18.1.9"]
    assert ask(index, "198-18-1-9.other.pod.cluster.local").rcode == dns.rcode.NXDOMAIN
    assert ask(index, "198-18-1-10.default.pod.cluster.local").rcode == dns.rcode.NXDOMAIN  # terminal
    assert ask(index, "not-an-ip.default.pod.cluster.local").rcode == dns.rcode.NXDOMAIN


def test_unknown_names_in_the_zone_are_nxdomain_with_soa(index: ClusterIndex) -> None:
    for name in ("nope.default.svc.cluster.local", "web.nope.svc.cluster.local", "x.cluster.local",
                 "a.b.web.default.svc.cluster.local"):
        reply = ask(index, name)
        assert reply.rcode == dns.rcode.NXDOMAIN, name
        assert [r.rdtype for r in reply.authority] == [T.SOA]
        assert reply.authority[0][0].mname.to_text() == "ns.dns.cluster.local."


def test_empty_non_terminals_are_nodata(index: ClusterIndex) -> None:
    for name in ("svc.cluster.local", "default.svc.cluster.local", "pod.cluster.local",
                 "default.pod.cluster.local", "_tcp.web.default.svc.cluster.local"):
        reply = ask(index, name)
        assert reply.rcode == dns.rcode.NOERROR and not reply.answer, name


def test_apex_soa_ns_and_schema_version(index: ClusterIndex) -> None:
    assert texts(ask(index, "cluster.local", T.NS)) == ["ns.dns.cluster.local."]
    assert texts(ask(index, "cluster.local", T.NS), "additional") == ["198.19.0.10"]
    soa = ask(index, "cluster.local", T.SOA).answer[0][0]
    assert (soa.rname.to_text(), soa.minimum) == ("hostmaster.cluster.local.", 5)
    assert texts(ask(index, "ns.dns.cluster.local")) == ["198.19.0.10"]
    assert texts(ask(index, "dns-version.cluster.local", T.TXT)) == ['"1.1.0"']


def test_reverse_lookups_of_cluster_addresses(index: ClusterIndex) -> None:
    assert texts(ask(index, dns.reversename.from_address("198.19.0.20").to_text(), T.PTR)) == [
        "web.default.svc.cluster.local."]
    assert texts(ask(index, dns.reversename.from_address("198.18.1.2").to_text(), T.PTR)) == [
        "db-0.db.default.svc.cluster.local."]
    unknown = dns.name.from_text(dns.reversename.from_address("192.0.2.1").to_text())
    assert resolve(unknown, T.PTR, index, ZONE) is None


def test_names_outside_the_zone_are_not_ours(index: ClusterIndex) -> None:
    assert resolve(dns.name.from_text("example.com."), T.A, index, ZONE) is None


def test_updates_and_deletes_take_effect(index: ClusterIndex) -> None:
    serial = index.serial
    index.put_service(service("web", ip="198.19.0.21"))
    assert texts(ask(index, "web.default.svc.cluster.local")) == ["198.19.0.21"]
    assert index.services_with_ip("198.19.0.20") == [] and index.serial > serial
    index.delete_slice(endpoint_slice("db-1", "db", endpoints=[]))
    assert ask(index, "db.default.svc.cluster.local").rcode == dns.rcode.NXDOMAIN
    index.delete_service(service("web"))
    assert ask(index, "web.default.svc.cluster.local").rcode == dns.rcode.NXDOMAIN
    index.delete_pod(pod("p1", "198.18.1.9"))
    assert ask(index, "198-18-1-9.default.pod.cluster.local").rcode == dns.rcode.NXDOMAIN
    assert ask(index, "default.pod.cluster.local").rcode == dns.rcode.NXDOMAIN


def test_overlapping_slices_count_an_endpoint_once(index: ClusterIndex) -> None:
    index.put_slice(endpoint_slice("db-2", "db", endpoints=[ep("198.18.1.3")]))
    assert texts(ask(index, "db.default.svc.cluster.local")).count("198.18.1.3") == 1


def test_ipv6_records() -> None:
    idx = ClusterIndex()
    idx.put_service(service("v6", ip="fd00::10"))
    idx.put_pod(pod("p", "fd00::1:2"))
    assert texts(ask(idx, "v6.default.svc.cluster.local", T.AAAA)) == ["fd00::10"]
    assert ask(idx, "v6.default.svc.cluster.local").answer == []
    assert texts(ask(idx, f"{dashed_ip('fd00::1:2')}.default.pod.cluster.local", T.AAAA)) == ["fd00::1:2"]


def test_ip_labels() -> None:
    assert ip_from_label("1-2-3-4") == "1.2.3.4" and dashed_ip("1.2.3.4") == "1-2-3-4"
    assert ip_from_label("fd00--1") == "fd00::1" and ip_from_label("web") is None

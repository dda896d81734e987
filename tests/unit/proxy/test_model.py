"""The proxy's pure model: Services + EndpointSlices (+ the node) → service ports → the desired
nftables ruleset, every feature checked as data."""

from __future__ import annotations

from typing import Any

from proxy_objects import endpoint, endpoint_slice, node, service

from kubelite.proxy.model import (
    CLUSTER_IPS,
    DROP,
    MASQ_CHAIN,
    NO_ENDPOINT_NODEPORTS,
    NO_ENDPOINT_SERVICES,
    NODEPORT_IPS,
    REJECT,
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    Balance,
    Dnat,
    Jump,
    Match,
    NodeContext,
    Remember,
    Ruleset,
    affinity_set,
    build,
    endpoint_chain,
    external_chain,
    goto,
    local_chain,
    service_chain,
    service_fragment,
)
from kubelite.proxy.serviceports import (
    Endpoint,
    ServicePort,
    categorize,
    node_addresses,
    proxied,
    service_ports,
)

Obj = dict[str, Any]
CTX = NodeContext("n1", node_ips=("198.19.128.1",), cluster_cidr="198.18.0.0/16")


def ports_of(svc: Obj, *slices: Obj) -> list[ServicePort]:
    return service_ports(svc, slices)


def ruleset(svc: Obj, *slices: Obj, ctx: NodeContext = CTX) -> Ruleset:
    return build(ports_of(svc, *slices), ctx)


def two_ready(svc: str = "web", **kw: Any) -> Obj:
    return endpoint_slice(svc, [endpoint("198.18.1.2", node="n1"), endpoint("198.18.2.2", node="n2")], **kw)


# ----- service ports -----------------------------------------------------------------------------

def test_ports_take_the_resolved_number_from_the_slice_for_a_named_target_port() -> None:
    svc = service("web", ports=[{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"}])
    [sp] = ports_of(svc, two_ready())
    assert (sp.cluster_ip, sp.port, sp.protocol, sp.port_name) == ("198.19.0.10", 80, "tcp", "http")
    assert [e.address for e in sp.endpoints] == ["198.18.1.2:8080", "198.18.2.2:8080"]
    assert sp.id == "ns/web/tcp/http"


def test_ports_match_slices_by_name_and_protocol() -> None:
    svc = service("dns", ports=[{"name": "dns", "port": 53, "protocol": "UDP"},
                                {"name": "dns-tcp", "port": 53, "protocol": "TCP"}])
    slice_ = endpoint_slice("dns", [endpoint("198.18.1.5")],
                            ports=[{"name": "dns", "port": 5353, "protocol": "UDP"},
                                   {"name": "dns-tcp", "port": 5354, "protocol": "TCP"}])
    udp, tcp = ports_of(svc, slice_)
    assert (udp.protocol, udp.endpoints[0].port) == ("udp", 5353)
    assert (tcp.protocol, tcp.endpoints[0].port) == ("tcp", 5354)


def test_unnamed_port_and_sctp() -> None:
    svc = service("s", ports=[{"port": 9, "protocol": "SCTP"}])
    [sp] = ports_of(svc, endpoint_slice("s", [endpoint("198.18.1.2")], ports=[{"port": 9, "protocol": "SCTP"}]))
    assert (sp.port_name, sp.protocol, sp.id) == ("", "sctp", "ns/s/sctp/")


def test_endpoints_deduplicated_across_slices_ready_copy_wins_and_ipv6_slices_ignored() -> None:
    a = endpoint_slice("web", [endpoint("198.18.1.2", ready=False)], name="a")
    b = endpoint_slice("web", [endpoint("198.18.1.2"), endpoint("198.18.1.3")], name="b")
    v6 = endpoint_slice("web", [endpoint("fd00::1")], name="c", address_type="IPv6")
    [sp] = ports_of(service("web"), a, b, v6)
    assert [(e.ip, e.ready) for e in sp.endpoints] == [("198.18.1.2", True), ("198.18.1.3", True)]


def test_conditions_default_to_ready_and_serving() -> None:
    [sp] = ports_of(service("web"), endpoint_slice("web", [endpoint("198.18.1.2", ready=None)]))
    assert sp.endpoints[0] == Endpoint("198.18.1.2", 8080, "n1", ready=True, serving=True, terminating=False)


def test_services_not_proxied() -> None:
    assert not proxied(service("h", cluster_ip="None"))
    assert not proxied(service("x", kind="ExternalName", cluster_ip=""))
    assert not proxied(service("o", labels={"service.kubernetes.io/service-proxy-name": "other"}))
    assert not proxied(service("o", labels={"service.kubernetes.io/headless": ""}))
    assert ports_of(service("h", cluster_ip="None"), two_ready("h")) == []
    assert proxied(service("web"))


def test_node_port_lb_ips_affinity_and_policies_read_from_the_service() -> None:
    svc = service("lb", kind="LoadBalancer", externalTrafficPolicy="Local", sessionAffinity="ClientIP",
                  ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
                  externalIPs=["198.19.201.1"],
                  status={"loadBalancer": {"ingress": [{"ip": "198.19.200.1", "ipMode": "VIP"},
                                                       {"ip": "198.19.200.2", "ipMode": "Proxy"}]}})
    [sp] = ports_of(svc)
    assert (sp.node_port, sp.lb_ips, sp.external_ips) == (30080, ("198.19.200.1",), ("198.19.201.1",))
    assert sp.affinity_timeout == 10800 and sp.external_local and sp.externally_accessible
    cluster = service("c", externalTrafficPolicy="Local", internalTrafficPolicy="Local",
                      ports=[{"name": "http", "port": 80, "nodePort": 30099}],
                      sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    [cp] = ports_of(cluster)
    assert cp.node_port == 0 and not cp.external_local and cp.internal_local  # ClusterIP: no NodePort
    assert cp.affinity_timeout == 60


def test_node_addresses_include_the_nodes_and_never_loopback() -> None:
    n = node("n1", ips=["198.19.128.1", "fd00::1"])
    assert node_addresses(n, ["127.0.0.1", "198.19.128.9"]) == ("198.19.128.9", "198.19.128.1")
    assert node_addresses(None) == ()


def test_categorize_prefers_ready_then_serving_terminating() -> None:
    sp = ServicePort("ns", "web", "http", "tcp", "198.19.0.10", 80, endpoints=(
        Endpoint("198.18.1.2", 80, "n1", ready=False, serving=True, terminating=True),
        Endpoint("198.18.2.2", 80, "n2")))
    assert [e.ip for e in categorize(sp, "n1").cluster] == ["198.18.2.2"]
    draining = ServicePort("ns", "web", "http", "tcp", "198.19.0.10", 80, endpoints=(
        Endpoint("198.18.1.2", 80, "n1", ready=False, serving=True, terminating=True),
        Endpoint("198.18.2.2", 80, "n2", ready=False, serving=False, terminating=True)))
    cat = categorize(draining, "n1")
    assert [e.ip for e in cat.cluster] == ["198.18.1.2"] and cat.any_usable
    not_ready = ServicePort("ns", "web", "http", "tcp", "198.19.0.10", 80,
                            endpoints=(Endpoint("198.18.1.2", 80, "n1", ready=False, serving=False),))
    assert categorize(not_ready, "n1") .any_usable is False


# ----- the ruleset ----------------------------------------------------------------------------------

def test_cluster_ip_spreads_over_ready_endpoints_only() -> None:
    slice_ = endpoint_slice("web", [endpoint("198.18.1.2"), endpoint("198.18.1.3", ready=False),
                                    endpoint("198.18.2.2", node="n2")])
    [sp] = ports_of(service("web"), slice_)
    rs = build([sp], CTX)
    chain = service_chain(sp)
    assert rs.maps[SERVICE_IPS] == {("198.19.0.10", "tcp", 80): goto(chain)}
    eps = [endpoint_chain(sp, e) for e in sp.endpoints if e.ready]
    assert rs.chains[chain][-1] == Balance(tuple(eps))
    assert set(rs.chains) == {chain, *eps}
    assert rs.sets[CLUSTER_IPS] == {"198.19.0.10"} and rs.maps[NO_ENDPOINT_SERVICES] == {}


def test_endpoint_chain_marks_hairpin_and_dnats_with_a_protocol() -> None:
    [sp] = ports_of(service("web"), endpoint_slice("web", [endpoint("198.18.1.2")]))
    rules = build([sp], CTX).chains[endpoint_chain(sp, sp.endpoints[0])]
    assert rules == (Jump(MASQ_CHAIN, Match(saddr="198.18.1.2")), Dnat("tcp", "198.18.1.2", 8080))


def test_traffic_from_outside_the_pod_network_to_a_cluster_ip_is_masqueraded() -> None:
    [sp] = ports_of(service("web"), two_ready())
    first = build([sp], CTX).chains[service_chain(sp)][0]
    assert first == Jump(MASQ_CHAIN, Match(daddr="198.19.0.10", dport=("tcp", 80), not_saddr="198.18.0.0/16"))
    no_cidr = build([sp], NodeContext("n1")).chains[service_chain(sp)]
    assert len(no_cidr) == 1 and isinstance(no_cidr[0], Balance)
    everything = build([sp], NodeContext("n1", masquerade_all=True)).chains[service_chain(sp)][0]
    assert everything == Jump(MASQ_CHAIN, Match(daddr="198.19.0.10", dport=("tcp", 80)))


def test_no_ready_endpoint_rejects_at_once() -> None:
    svc = service("web", kind="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    rs = ruleset(svc, endpoint_slice("web", [endpoint("198.18.1.2", ready=False, serving=False)]))
    assert rs.maps[NO_ENDPOINT_SERVICES] == {("198.19.0.10", "tcp", 80): REJECT}
    assert rs.maps[NO_ENDPOINT_NODEPORTS] == {("tcp", 30080): REJECT}
    assert rs.maps[SERVICE_IPS] == {} and rs.maps[SERVICE_NODEPORTS] == {} and rs.chains == {}
    assert rs.sets[CLUSTER_IPS] == {"198.19.0.10"}  # other ports of the address are rejected too


def test_node_port_on_every_node_address_through_a_masquerading_external_chain() -> None:
    svc = service("web", kind="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    [sp] = ports_of(svc, two_ready())
    ctx = NodeContext("n1", node_ips=("198.19.128.1", "198.19.129.1"))
    rs = build([sp], ctx)
    assert rs.sets[NODEPORT_IPS] == {"198.19.128.1", "198.19.129.1"}
    assert rs.maps[SERVICE_NODEPORTS] == {("tcp", 30080): goto(external_chain(sp))}
    assert rs.chains[external_chain(sp)] == (Jump(MASQ_CHAIN), Jump(service_chain(sp), goto=True))


def test_load_balancer_ingress_and_external_ips_go_to_the_external_chain() -> None:
    svc = service("lb", kind="LoadBalancer", ports=[{"name": "http", "port": 80, "nodePort": 30080}],
                  externalIPs=["198.19.201.1"],
                  status={"loadBalancer": {"ingress": [{"ip": "198.19.200.1", "ipMode": "VIP"}]}})
    [sp] = ports_of(svc, two_ready("lb"))
    rs = build([sp], CTX)
    ext = goto(external_chain(sp))
    assert rs.maps[SERVICE_IPS] == {("198.19.0.10", "tcp", 80): goto(service_chain(sp)),
                                    ("198.19.200.1", "tcp", 80): ext, ("198.19.201.1", "tcp", 80): ext}
    assert rs.maps[SERVICE_NODEPORTS] == {("tcp", 30080): ext}


def test_external_traffic_policy_local_keeps_the_source_and_uses_local_endpoints() -> None:
    svc = service("lb", kind="LoadBalancer", externalTrafficPolicy="Local",
                  ports=[{"name": "http", "port": 80, "nodePort": 30080}],
                  status={"loadBalancer": {"ingress": [{"ip": "198.19.200.1"}]}})
    [sp] = ports_of(svc, two_ready("lb"))
    rs = build([sp], CTX)
    local, cluster = local_chain(sp), service_chain(sp)
    assert rs.chains[external_chain(sp)] == (
        Jump(cluster, Match(saddr="198.18.0.0/16"), goto=True),  # pods: short circuit
        Jump(MASQ_CHAIN, Match(local_source=True)),  # the host: masquerade, short circuit
        Jump(cluster, Match(local_source=True), goto=True),
        Jump(local, goto=True))  # everyone else: this node's endpoints, no masquerade
    local_ep = [e for e in sp.endpoints if e.node == "n1"]
    assert rs.chains[local][-1] == Balance(tuple(endpoint_chain(sp, e) for e in local_ep))
    assert len(rs.chains[cluster][-1].targets) == 2  # type: ignore[union-attr]
    assert rs.maps[NO_ENDPOINT_SERVICES] == {} and rs.maps[NO_ENDPOINT_NODEPORTS] == {}


def test_external_local_without_local_endpoints_drops_external_traffic_but_keeps_short_circuits() -> None:
    svc = service("lb", kind="LoadBalancer", externalTrafficPolicy="Local",
                  ports=[{"name": "http", "port": 80, "nodePort": 30080}],
                  status={"loadBalancer": {"ingress": [{"ip": "198.19.200.1"}]}})
    [sp] = ports_of(svc, endpoint_slice("lb", [endpoint("198.18.2.2", node="n2")]))
    rs = build([sp], CTX)
    assert rs.maps[NO_ENDPOINT_NODEPORTS] == {("tcp", 30080): DROP}
    assert rs.maps[NO_ENDPOINT_SERVICES] == {("198.19.200.1", "tcp", 80): DROP}
    assert rs.maps[SERVICE_IPS][("198.19.0.10", "tcp", 80)] == goto(service_chain(sp))
    assert rs.chains[external_chain(sp)][-1] == Jump(service_chain(sp), Match(local_source=True), goto=True)
    assert local_chain(sp) not in rs.chains


def test_internal_traffic_policy_local() -> None:
    svc = service("web", internalTrafficPolicy="Local")
    [sp] = ports_of(svc, two_ready())
    rs = build([sp], CTX)
    assert rs.maps[SERVICE_IPS] == {("198.19.0.10", "tcp", 80): goto(local_chain(sp))}
    assert service_chain(sp) not in rs.chains
    elsewhere = build(ports_of(svc, endpoint_slice("web", [endpoint("198.18.2.2", node="n2")])), CTX)
    assert elsewhere.maps[NO_ENDPOINT_SERVICES] == {("198.19.0.10", "tcp", 80): DROP}


def test_session_affinity_client_ip_uses_one_timed_set_per_endpoint() -> None:
    svc = service("web", sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})
    [sp] = ports_of(svc, two_ready())
    rs = build([sp], CTX)
    sets = [affinity_set(sp, e) for e in sp.endpoints]
    chains = [endpoint_chain(sp, e) for e in sp.endpoints]
    assert rs.affinity_sets == dict.fromkeys(sets, 600)
    assert rs.chains[service_chain(sp)][1:] == (
        Jump(chains[0], Match(saddr_set=sets[0]), goto=True),
        Jump(chains[1], Match(saddr_set=sets[1]), goto=True), Balance(tuple(chains)))
    assert rs.chains[chains[0]][1] == Remember(sets[0])


def test_udp_and_sctp_dnat_with_their_protocol() -> None:
    svc = service("dns", ports=[{"name": "dns", "port": 53, "protocol": "UDP"},
                                {"name": "s", "port": 9, "protocol": "SCTP"}])
    slice_ = endpoint_slice("dns", [endpoint("198.18.1.5")], ports=[{"name": "dns", "port": 53, "protocol": "UDP"},
                                                                   {"name": "s", "port": 9, "protocol": "SCTP"}])
    udp, sctp = ports_of(svc, slice_)
    rs = build([udp, sctp], CTX)
    assert rs.maps[SERVICE_IPS].keys() == {("198.19.0.10", "udp", 53), ("198.19.0.10", "sctp", 9)}
    assert rs.chains[endpoint_chain(udp, udp.endpoints[0])][-1] == Dnat("udp", "198.18.1.5", 53)
    assert rs.chains[endpoint_chain(sctp, sctp.endpoints[0])][-1] == Dnat("sctp", "198.18.1.5", 9)


def test_names_are_stable_distinct_and_nft_safe() -> None:
    [a] = ports_of(service("web"), two_ready())
    [b] = ports_of(service("web2"), two_ready("web2"))
    assert service_chain(a) == service_chain(ports_of(service("web"), two_ready())[0])
    assert service_chain(a) != service_chain(b)
    assert service_chain(a).startswith("service-") and service_chain(a).endswith("-ns/web/tcp/http")
    long = ServicePort("n" * 63, "s" * 63, "p" * 15, "tcp", "198.19.0.1", 1,
                       endpoints=(Endpoint("198.18.1.2", 65535),))
    assert len(endpoint_chain(long, long.endpoints[0])) <= 256


def test_one_endpoint_change_touches_only_that_services_fragment() -> None:
    web = service("web")
    other = service("other", cluster_ip="198.19.0.11")
    before = {"web": service_fragment(ports_of(web, two_ready()), CTX),
              "other": service_fragment(ports_of(other, two_ready("other")), CTX)}
    after_web = service_fragment(ports_of(web, endpoint_slice("web", [endpoint("198.18.1.2")])), CTX)
    changed = {c for c in after_web.chains.keys() | before["web"].chains.keys()
               if after_web.chains.get(c) != before["web"].chains.get(c)}
    [sp] = ports_of(web, two_ready())
    assert changed == {service_chain(sp), endpoint_chain(sp, sp.endpoints[1])}
    assert not changed & before["other"].chains.keys()

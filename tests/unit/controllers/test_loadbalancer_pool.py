"""The LoadBalancer address pool: choosing, honouring requests, rebuilding after a restart."""

from __future__ import annotations

from typing import Any

from kubelite.controllers.loadbalancer import Pool, ingress_ips, wants_address

Obj = dict[str, Any]


def service(name: str, *, ip: str | None = None, requested: str | None = None, created: str = "2024-01-01T00:00:00Z",
            kind: str = "LoadBalancer", lb_class: str | None = None) -> Obj:
    spec: Obj = {"type": kind}
    if requested:
        spec["loadBalancerIP"] = requested
    if lb_class:
        spec["loadBalancerClass"] = lb_class
    status = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}} if ip else {"loadBalancer": {}}
    return {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created}, "spec": spec,
            "status": status}


def test_wants_address() -> None:
    assert wants_address(service("a"))
    assert not wants_address(service("a", kind="ClusterIP"))
    assert not wants_address(service("a", lb_class="example.com/other"))
    assert ingress_ips(service("a", ip="198.19.200.7")) == ["198.19.200.7"]


def test_first_free_skips_network_and_broadcast() -> None:
    pool = Pool("198.19.200.0/30")
    assert pool.first_free() == "198.19.200.1"
    pool.assign("ns/a", "198.19.200.1")
    assert pool.first_free() == "198.19.200.2"
    pool.assign("ns/b", "198.19.200.2")
    assert pool.first_free() is None
    assert pool.choose("ns/c", service("c")) == (None, "no available IPs in the pool 198.19.200.0/30")
    assert not pool.contains("198.19.200.3") and not pool.contains("198.19.200.0")


def test_choose_is_stable_and_unique() -> None:
    pool = Pool("198.19.200.0/24")
    ip_a, _ = pool.choose("ns/a", service("a"))
    assert ip_a is not None
    pool.assign("ns/a", ip_a)
    assert pool.choose("ns/a", service("a")) == (ip_a, "")
    ip_b, _ = pool.choose("ns/b", service("b"))
    assert ip_b not in (None, ip_a)
    assert pool.release("ns/a") == ip_a and pool.release("ns/a") is None
    assert pool.first_free() == ip_a


def test_requested_ip_in_pool_free_or_refused() -> None:
    pool = Pool("198.19.200.0/24")
    assert pool.choose("ns/a", service("a", requested="198.19.200.50")) == ("198.19.200.50", "")
    pool.assign("ns/a", "198.19.200.50")
    ip, reason = pool.choose("ns/b", service("b", requested="198.19.200.50"))
    assert ip is None and "already allocated to ns/a" in reason
    ip, reason = pool.choose("ns/b", service("b", requested="10.1.2.3"))
    assert ip is None and "not in the pool" in reason
    # a changed request moves the service
    assert pool.choose("ns/a", service("a", requested="198.19.200.51")) == ("198.19.200.51", "")
    pool.assign("ns/a", "198.19.200.51")
    assert "198.19.200.50" not in pool.holders


def test_rebuild_from_published_status_oldest_wins() -> None:
    pool = Pool("198.19.200.0/24")
    pool.rebuild([
        service("young", ip="198.19.200.9", created="2024-02-01T00:00:00Z"),
        service("old", ip="198.19.200.9", created="2024-01-01T00:00:00Z"),
        service("other", ip="198.19.200.3"),
        service("foreign", ip="10.0.0.1"),
        service("was-lb", ip="198.19.200.4", kind="ClusterIP"),
    ])
    assert pool.addresses == {"ns/old": "198.19.200.9", "ns/other": "198.19.200.3"}
    ip, _ = pool.choose("ns/young", service("young", ip="198.19.200.9"))
    assert ip == "198.19.200.1"

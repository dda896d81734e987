"""Endpoints: subsets built from pods (the pure part of the Endpoints controller)."""

from __future__ import annotations

import copy
from typing import Any

from kubelite.controllers import endpoints as ep
from kubelite.controllers.endpointslice import util

Obj = dict[str, Any]


def service(*, ports: list[Obj] | None = None, publish: bool = False, **spec: Any) -> Obj:
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"team": "a"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "198.19.0.20", "ipFamilies": ["IPv4"],
                     "ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": "http",
                                                                "protocol": "TCP"}],
                     "publishNotReadyAddresses": publish, **spec}}


def pod(name: str, ip: str | None, *, ready: bool = True, port: int = 8080, terminating: bool = False,
        phase: str = "Running", extra_ports: list[Obj] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"app": "web"}}
    if terminating:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    status: Obj = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    ports = [{"name": "http", "containerPort": port, "protocol": "TCP"}, *(extra_ports or [])]
    return {"metadata": meta, "status": status, "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports}]}}


def ips(subset: Obj, field: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(field) or []]


def test_ready_and_not_ready_addresses_share_a_subset() -> None:
    subsets = ep.build_subsets(service(), [pod("b", "10.0.0.2", ready=False), pod("a", "10.0.0.1")])
    assert len(subsets) == 1
    assert ips(subsets[0]) == ["10.0.0.1"] and ips(subsets[0], "notReadyAddresses") == ["10.0.0.2"]
    assert subsets[0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert subsets[0]["addresses"][0] == {"ip": "10.0.0.1", "nodeName": "n1",
                                          "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}}


def test_excluded_pods() -> None:
    pods = [pod("noip", None), pod("done", "10.0.0.3", phase="Succeeded"), pod("going", "10.0.0.4", terminating=True)]
    assert ep.build_subsets(service(), pods) == []
    published = ep.build_subsets(service(publish=True), pods)
    assert ips(published[0]) == ["10.0.0.4"]


def test_publish_not_ready_addresses() -> None:
    subsets = ep.build_subsets(service(publish=True), [pod("a", "10.0.0.1", ready=False)])
    assert ips(subsets[0]) == ["10.0.0.1"] and "notReadyAddresses" not in subsets[0]


def test_named_port_resolving_differently_splits_subsets() -> None:
    subsets = ep.build_subsets(service(), [pod("a", "10.0.0.1", port=8080), pod("b", "10.0.0.2", port=9090),
                                           pod("c", "10.0.0.3", port=8080)])
    assert [(s["ports"][0]["port"], ips(s)) for s in subsets] == [(8080, ["10.0.0.1", "10.0.0.3"]),
                                                                  (9090, ["10.0.0.2"])]


def test_addresses_group_by_port_and_missing_named_port_drops_it() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                         {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}])
    with_metrics = pod("a", "10.0.0.1", extra_ports=[{"name": "metrics", "containerPort": 9100}])
    subsets = ep.build_subsets(svc, [with_metrics, pod("b", "10.0.0.2")])
    assert [(sorted(p["name"] for p in s["ports"]), ips(s)) for s in subsets] == [
        (["http"], ["10.0.0.1", "10.0.0.2"]), (["metrics"], ["10.0.0.1"])]
    both = ep.build_subsets(svc, [with_metrics])
    assert [sorted(p["name"] for p in s["ports"]) for s in both] == [["http", "metrics"]]


def test_headless_without_ports() -> None:
    subsets = ep.build_subsets(service(ports=[], clusterIP="None"), [pod("a", "10.0.0.1")])
    assert subsets == [{"addresses": [{"ip": "10.0.0.1", "nodeName": "n1", "targetRef": {
        "kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}}]}]
    assert ep.build_subsets(service(ports=[]), [pod("a", "10.0.0.1")]) == []


def test_hostname_set_for_matching_subdomain() -> None:
    p = pod("a", "10.0.0.1")
    p["spec"].update(hostname="a0", subdomain="web")
    assert ep.build_subsets(service(clusterIP="None"), [p])[0]["addresses"][0]["hostname"] == "a0"


def test_desired_endpoints_create_update_and_no_op() -> None:
    svc, pods = service(clusterIP="None"), [pod("a", "10.0.0.1")]
    created = ep.desired_endpoints(svc, pods, None)
    assert created is not None
    assert created["metadata"] == {"name": "web", "namespace": "ns",
                                   "labels": {"team": "a", util.LABEL_HEADLESS: ""}}
    stored = copy.deepcopy(created)
    stored["metadata"].update(resourceVersion="5", uid="e-uid")
    stored["subsets"][0]["addresses"][0]["targetRef"]["resourceVersion"] = "3"  # ignored when comparing
    assert ep.desired_endpoints(svc, pods, stored) is None
    updated = ep.desired_endpoints(svc, [pod("a", "10.0.0.1", ready=False)], stored)
    assert updated is not None and updated["metadata"]["resourceVersion"] == "5"
    assert ips(updated["subsets"][0], "notReadyAddresses") == ["10.0.0.1"]


def test_truncate_prefers_ready_addresses() -> None:
    subsets = [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(6)],
                "notReadyAddresses": [{"ip": f"10.0.1.{i}"} for i in range(6)], "ports": [{"port": 1}]}]
    assert ep.truncate(subsets, capacity=8)
    assert len(subsets[0]["addresses"]) == 6 and len(subsets[0]["notReadyAddresses"]) == 2
    assert not ep.truncate(subsets, capacity=8)
    assert ep.truncate(subsets, capacity=3)
    assert len(subsets[0]["addresses"]) == 3 and "notReadyAddresses" not in subsets[0]


def test_over_capacity_annotation() -> None:
    pods = [pod(f"p{i}", f"10.{i // 250}.{i % 250}.1") for i in range(1001)]
    result = ep.desired_endpoints(service(), pods, None)
    assert result is not None and result["metadata"]["annotations"] == {ep.OVER_CAPACITY: "truncated"}
    assert sum(len(s["addresses"]) for s in result["subsets"]) == 1000


def test_master_objects() -> None:
    endpoints = ep.master_endpoints("198.19.128.1", 6443)
    assert endpoints["metadata"]["labels"] == {util.LABEL_SKIP_MIRROR: "true"}
    assert endpoints["subsets"] == [{"addresses": [{"ip": "198.19.128.1"}],
                                     "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    slice_ = ep.master_slice("198.19.128.1", 6443)
    assert slice_["metadata"]["labels"] == {util.LABEL_SERVICE_NAME: "kubernetes"}
    assert slice_["endpoints"] == [{"addresses": ["198.19.128.1"], "conditions": {"ready": True}}]
    assert ep.needs_write(None, endpoints, ("subsets",))
    assert not ep.needs_write(copy.deepcopy(endpoints), endpoints, ("subsets",))

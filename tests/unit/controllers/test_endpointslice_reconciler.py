"""EndpointSlice planning: the pure reconciler, its pod rules, and the stale-cache tracker."""

from __future__ import annotations

import copy
from typing import Any

from kubelite.controllers.endpointslice import reconciler, util
from kubelite.controllers.endpointslice.tracker import SliceTracker

Obj = dict[str, Any]

NODES = {"n1": {"metadata": {"name": "n1", "labels": {util.LABEL_ZONE: "zone-a"}}},
         "n2": {"metadata": {"name": "n2"}}}


def service(name: str = "web", *, ports: list[Obj] | None = None, publish: bool = False, **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"team": "a"}},
            "spec": {"selector": {"app": name}, "clusterIP": "198.19.0.20", "ipFamilies": ["IPv4"],
                     "ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": "http",
                                                                "protocol": "TCP"}],
                     "publishNotReadyAddresses": publish, **spec}}


def pod(name: str, ip: str | None, *, ready: bool = True, node: str = "n1", port: int = 8080,
        terminating: bool = False, phase: str = "Running") -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"app": "web"},
                 "resourceVersion": "1"}
    if terminating:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    status: Obj = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    return {"metadata": meta, "status": status,
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": port, "protocol": "TCP"}]}]}}


def plan_for(svc: Obj, pods: list[Obj], existing: list[Obj] | None = None, **kw: Any) -> reconciler.Plan:
    return reconciler.reconcile(svc, pods, existing or [], node_of=NODES.get, **kw)


def materialize(plan: reconciler.Plan, existing: list[Obj] | None = None) -> list[Obj]:
    """What the API would hold after applying `plan` (names and uids for created slices)."""
    by_name = {s["metadata"]["name"]: s for s in existing or []}
    for doomed in plan.delete:
        by_name.pop(doomed["metadata"]["name"])
    for updated in plan.update:
        by_name[updated["metadata"]["name"]] = copy.deepcopy(updated)
    for i, created in enumerate(plan.create):
        created = copy.deepcopy(created)
        name = created["metadata"].pop("generateName") + f"x{len(by_name)}{i}"
        created["metadata"].update(name=name, uid=f"uid-{name}")
        by_name[name] = created
    return list(by_name.values())


# ----- util ---------------------------------------------------------------------------------------

def test_find_port_numeric_named_and_protocol() -> None:
    p = pod("a", "10.0.0.1", port=9000)
    assert util.find_port(p, {"port": 80, "targetPort": 8081}) == 8081
    assert util.find_port(p, {"port": 80, "targetPort": "http", "protocol": "TCP"}) == 9000
    assert util.find_port(p, {"port": 80, "targetPort": "http", "protocol": "UDP"}) is None
    assert util.find_port(p, {"port": 80, "targetPort": "nope"}) is None
    assert util.find_port(p, {"port": 80}) == 80


def test_named_port_in_sidecar_only_when_restartable() -> None:
    p = pod("a", "10.0.0.1")
    p["spec"]["containers"][0]["ports"] = []
    sidecar = {"name": "s", "ports": [{"name": "http", "containerPort": 7000}]}
    p["spec"]["initContainers"] = [sidecar]
    assert util.find_port(p, {"port": 80, "targetPort": "http"}) is None
    sidecar["restartPolicy"] = "Always"
    assert util.find_port(p, {"port": 80, "targetPort": "http"}) == 7000


def test_should_include() -> None:
    assert util.should_include(pod("a", "10.0.0.1"), include_terminating=False)
    assert not util.should_include(pod("a", None), include_terminating=True)
    assert not util.should_include(pod("a", "10.0.0.1", phase="Succeeded"), include_terminating=True)
    assert not util.should_include(pod("a", "10.0.0.1", terminating=True), include_terminating=False)
    assert util.should_include(pod("a", "10.0.0.1", terminating=True), include_terminating=True)


def test_services_to_update_on_readiness_and_label_changes() -> None:
    services = [service("web"), service("api")]
    services[1]["spec"]["selector"] = {"app": "api"}
    old = pod("a", "10.0.0.1", ready=True)
    unready = copy.deepcopy(old)
    unready["status"]["conditions"][0]["status"] = "False"
    unready["metadata"]["resourceVersion"] = "2"
    assert util.services_to_update(services, old, unready) == {"ns/web"}
    assert util.services_to_update(services, old, copy.deepcopy(old)) == set()  # same resourceVersion
    moved = copy.deepcopy(old)
    moved["metadata"].update(resourceVersion="3", labels={"app": "api"})
    assert util.services_to_update(services, old, moved) == {"ns/web", "ns/api"}
    annotated = copy.deepcopy(old)
    annotated["metadata"].update(resourceVersion="4", annotations={"x": "y"})
    assert util.services_to_update(services, old, annotated) == set()


def test_selects_pods() -> None:
    assert util.selects_pods(service())
    assert not util.selects_pods({"spec": {"selector": {}}})
    assert not util.selects_pods({"spec": {}})
    assert not util.selects_pods({"spec": {"type": "ExternalName", "selector": {"a": "b"}}})


# ----- reconcile ----------------------------------------------------------------------------------

def test_new_service_gets_one_slice_with_endpoints_conditions_and_zone() -> None:
    svc = service()
    plan = plan_for(svc, [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", ready=False, node="n2"),
                          pod("c", "10.0.0.3", terminating=True), pod("d", None)])
    assert not plan.update and not plan.delete and len(plan.create) == 1
    created = plan.create[0]
    assert created["metadata"]["generateName"] == "web-"
    assert created["metadata"]["labels"] == {"team": "a", util.LABEL_SERVICE_NAME: "web",
                                             util.LABEL_MANAGED_BY: util.CONTROLLER_NAME}
    assert created["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                       "uid": "uid-web", "controller": True,
                                                       "blockOwnerDeletion": True}]
    assert created["addressType"] == "IPv4"
    assert created["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    by_name = {e["targetRef"]["name"]: e for e in created["endpoints"]}
    assert set(by_name) == {"a", "b", "c"}
    assert by_name["a"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert by_name["a"]["zone"] == "zone-a" and by_name["a"]["nodeName"] == "n1"
    assert by_name["b"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert "zone" not in by_name["b"]
    assert by_name["c"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert by_name["a"]["targetRef"] == {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}


def test_publish_not_ready_marks_everything_ready() -> None:
    plan = plan_for(service(publish=True), [pod("b", "10.0.0.2", ready=False), pod("c", "10.0.0.3", terminating=True)])
    assert all(e["conditions"]["ready"] for e in plan.create[0]["endpoints"])


def test_readiness_flip_updates_in_place() -> None:
    svc = service()
    slices = materialize(plan_for(svc, [pod("a", "10.0.0.1"), pod("b", "10.0.0.2")]))
    plan = plan_for(svc, [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", ready=False)], slices)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    assert plan.update[0]["metadata"]["name"] == slices[0]["metadata"]["name"]
    flipped = {e["targetRef"]["name"]: e["conditions"]["ready"] for e in plan.update[0]["endpoints"]}
    assert flipped == {"a": True, "b": False}


def test_nothing_changed_means_no_writes() -> None:
    svc, pods = service(), [pod("a", "10.0.0.1"), pod("b", "10.0.0.2")]
    slices = materialize(plan_for(svc, pods))
    assert plan_for(svc, pods, slices) == reconciler.Plan()


def test_removed_pod_leaves_its_slice() -> None:
    svc = service()
    slices = materialize(plan_for(svc, [pod("a", "10.0.0.1"), pod("b", "10.0.0.2")]))
    plan = plan_for(svc, [pod("a", "10.0.0.1")], slices)
    assert [e["targetRef"]["name"] for e in plan.update[0]["endpoints"]] == ["a"]


def test_no_pods_keeps_a_single_placeholder() -> None:
    svc = service()
    plan = plan_for(svc, [])
    assert len(plan.create) == 1 and plan.create[0]["endpoints"] == [] and plan.create[0]["ports"] == []
    slices = materialize(plan)
    assert plan_for(svc, [], slices) == reconciler.Plan()
    # the last pod going turns its slice into the placeholder instead of delete + create
    slices = materialize(plan_for(svc, [pod("a", "10.0.0.1")]))
    plan = plan_for(svc, [], slices)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    assert plan.update[0]["endpoints"] == [] and plan.update[0]["metadata"]["name"] == slices[0]["metadata"]["name"]


def test_different_resolved_ports_need_different_slices() -> None:
    svc = service()
    plan = plan_for(svc, [pod("a", "10.0.0.1", port=8080), pod("b", "10.0.0.2", port=9090)])
    assert sorted(s["ports"][0]["port"] for s in plan.create) == [8080, 9090]


def test_max_endpoints_per_slice_and_refill() -> None:
    svc = service()
    pods = [pod(f"p{i}", f"10.0.{i // 250}.{i % 250 + 1}") for i in range(250)]
    slices = materialize(plan_for(svc, pods))
    assert sorted(len(s["endpoints"]) for s in slices) == [50, 100, 100]
    # one more pod goes into the slice with room, not a new one
    plan = plan_for(svc, [*pods, pod("extra", "10.9.9.9")], slices)
    assert not plan.create and len(plan.update) == 1 and len(plan.update[0]["endpoints"]) == 51


def test_foreign_and_wrong_family_slices_are_removed() -> None:
    svc = service()
    slices = materialize(plan_for(svc, [pod("a", "10.0.0.1")]))
    stray = copy.deepcopy(slices[0])
    stray["metadata"].update(name="web-old", uid="u-old", ownerReferences=[{"apiVersion": "v1", "kind": "Service",
                                                                             "name": "web", "uid": "gone"}])
    v6 = copy.deepcopy(slices[0])
    v6["metadata"].update(name="web-v6", uid="u-v6")
    v6["addressType"] = "IPv6"
    plan = plan_for(svc, [pod("a", "10.0.0.1")], [*slices, stray, v6])
    assert sorted(s["metadata"]["name"] for s in plan.delete) == ["web-old", "web-v6"]
    assert not plan.create and not plan.update


def test_service_label_change_updates_slice_labels() -> None:
    svc = service()
    slices = materialize(plan_for(svc, [pod("a", "10.0.0.1")]))
    svc["metadata"]["labels"] = {"team": "b"}
    plan = plan_for(svc, [pod("a", "10.0.0.1")], slices)
    assert plan.update[0]["metadata"]["labels"]["team"] == "b"


def test_pod_on_unknown_node_is_left_out_and_reported() -> None:
    plan = plan_for(service(), [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", node="ghost")])
    assert [e["targetRef"]["name"] for e in plan.create[0]["endpoints"]] == ["a"]
    assert plan.missing_nodes and "ghost" in plan.missing_nodes[0]
    published = plan_for(service(publish=True), [pod("b", "10.0.0.2", node="ghost")])
    assert [e["targetRef"]["name"] for e in published.create[0]["endpoints"]] == ["b"]


def test_headless_service_labels_and_hostname() -> None:
    svc = service(clusterIP="None")
    p = pod("a", "10.0.0.1")
    p["spec"].update(hostname="a", subdomain="web")
    created = plan_for(svc, [p]).create[0]
    assert created["metadata"]["labels"][util.LABEL_HEADLESS] == ""
    assert created["endpoints"][0]["hostname"] == "a"


# ----- tracker ------------------------------------------------------------------------------------

def _slice(uid: str, rv: str) -> Obj:
    return {"metadata": {"uid": uid, "resourceVersion": rv, "namespace": "ns",
                         "labels": {util.LABEL_SERVICE_NAME: "web"}}}


def test_tracker_detects_stale_cache() -> None:
    tracker, svc = SliceTracker(), service()
    assert not tracker.stale(svc, [])
    tracker.update(_slice("s1", "10"))
    assert tracker.stale(svc, [])  # we created it, the cache does not have it yet
    assert tracker.stale(svc, [_slice("s1", "9")])
    assert not tracker.stale(svc, [_slice("s1", "10")])
    assert not tracker.should_sync(_slice("s1", "10"))  # our own write echoing back
    assert tracker.should_sync(_slice("s1", "11"))  # someone else's change
    tracker.expect_deletion(_slice("s1", "10"))
    assert tracker.stale(svc, [_slice("s1", "10")])
    assert tracker.handle_deletion(_slice("s1", "10"))
    assert not tracker.stale(svc, [])


def test_tracker_unexpected_deletion_and_recreated_service() -> None:
    tracker, svc = SliceTracker(), service()
    tracker.update(_slice("s1", "10"))
    assert not tracker.handle_deletion(_slice("s1", "10"))
    tracker.update(_slice("s2", "12"))
    recreated = copy.deepcopy(svc)
    tracker.stale(svc, [_slice("s2", "12")])
    recreated["metadata"]["uid"] = "new-uid"
    assert not tracker.stale(recreated, [])

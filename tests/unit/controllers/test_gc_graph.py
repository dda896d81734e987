"""The garbage collector's ownership graph: edges, virtual owners, transitions, what gets scheduled."""

from __future__ import annotations

from typing import Any

from kubelite.controllers.garbagecollector.graph import AbsentOwners, Graph, diff_references
from kubelite.controllers.garbagecollector.kinds import gc_resources, resolve

Obj = dict[str, Any]


def obj(kind: str, name: str, uid: str, *, owners: list[Obj] | None = None, namespace: str | None = "ns",
        deleting: bool = False, finalizers: list[str] | None = None) -> Obj:
    api_version = {"ReplicaSet": "apps/v1", "Deployment": "apps/v1"}.get(kind, "v1")
    meta: Obj = {"name": name, "uid": uid, "resourceVersion": "1"}
    if namespace:
        meta["namespace"] = namespace
    if owners:
        meta["ownerReferences"] = owners
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def ref(owner: Obj, *, block: bool = True) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": block}


RS = obj("ReplicaSet", "rs", "rs-uid")
POD = obj("Pod", "p", "pod-uid", owners=[ref(RS)])


def test_tracked_kinds_exclude_events_and_resolve_by_group_and_kind() -> None:
    plurals = {(rt.group, rt.plural) for rt in gc_resources()}
    assert ("", "pods") in plurals and ("apps", "replicasets") in plurals and ("", "nodes") in plurals
    assert ("", "events") not in plurals and ("events.k8s.io", "events") not in plurals
    assert ("", "bindings") not in plurals  # cannot be listed or deleted
    rs_type = resolve("apps/v1", "ReplicaSet")
    assert rs_type is not None and rs_type.plural == "replicasets"
    assert resolve("apps/v1beta2", "ReplicaSet") is rs_type  # the version does not matter
    assert resolve("extensions/v1beta1", "ReplicaSet") is None
    assert resolve("v1", "Event") is None


def test_owner_seen_first_gets_dependent_edge_and_nothing_is_scheduled() -> None:
    graph = Graph()
    assert graph.observe(RS).attempt_delete == []
    assert graph.observe(POD).attempt_delete == []
    assert graph.nodes["rs-uid"].dependents == {"pod-uid"}


def test_dependent_seen_first_makes_a_virtual_owner_to_verify() -> None:
    graph = Graph()
    changes = graph.observe(POD)
    assert changes.attempt_delete == ["rs-uid"]
    owner = graph.nodes["rs-uid"]
    assert not owner.observed and owner.dependents == {"pod-uid"}
    assert owner.identity.namespace == "ns" and owner.identity.kind == "ReplicaSet"
    assert graph.observe(RS).attempt_delete == []  # observed with matching coordinates: nothing to recheck
    assert graph.nodes["rs-uid"].observed


def test_virtual_owner_observed_under_other_coordinates_rechecks_its_dependents() -> None:
    graph = Graph()
    graph.observe(POD)
    renamed = obj("ReplicaSet", "other-name", "rs-uid")
    assert graph.observe(renamed).attempt_delete == ["pod-uid"]


def test_deleted_owner_schedules_dependents_and_is_remembered_absent() -> None:
    graph = Graph()
    graph.observe(RS)
    graph.observe(POD)
    assert graph.forget(RS).attempt_delete == ["pod-uid"]
    assert "rs-uid" not in graph.nodes
    assert ("ns", "rs-uid") in graph.absent
    # a dependent created later naming the absent owner is scheduled directly, without a virtual node
    late = obj("Pod", "late", "late-uid", owners=[ref(RS)])
    assert graph.observe(late).attempt_delete == ["late-uid"]
    assert "rs-uid" not in graph.nodes


def test_confirm_absent_drops_virtual_owner_and_schedules_dependents() -> None:
    graph = Graph()
    graph.observe(POD)
    assert graph.confirm_absent("rs-uid").attempt_delete == ["pod-uid"]
    assert "rs-uid" not in graph.nodes and ("ns", "rs-uid") in graph.absent
    assert graph.confirm_absent("pod-uid").attempt_delete == []  # observed nodes are never dropped this way


def test_virtual_owner_goes_with_its_last_dependent() -> None:
    graph = Graph()
    graph.observe(POD)
    graph.forget(POD)
    assert graph.nodes == {}


def test_reference_changes_move_edges() -> None:
    graph = Graph()
    other = obj("ReplicaSet", "rs2", "rs2-uid")
    graph.observe(RS)
    graph.observe(other)
    graph.observe(POD)
    moved = obj("Pod", "p", "pod-uid", owners=[ref(other)])
    graph.observe(moved)
    assert graph.nodes["rs-uid"].dependents == set()
    assert graph.nodes["rs2-uid"].dependents == {"pod-uid"}


def test_foreground_transition_schedules_dependents_and_owner_once() -> None:
    graph = Graph()
    graph.observe(RS)
    graph.observe(POD)
    terminating = obj("ReplicaSet", "rs", "rs-uid", deleting=True, finalizers=["foregroundDeletion"])
    assert graph.observe(terminating).attempt_delete == ["pod-uid", "rs-uid"]
    assert graph.nodes["rs-uid"].deleting_dependents
    assert graph.observe(terminating).attempt_delete == []  # no transition, nothing new
    assert [d.uid for d in graph.blocking_dependents("rs-uid")] == ["pod-uid"]
    # the dependent going unblocks the owner
    assert graph.forget(POD).attempt_delete == ["rs-uid"]
    assert graph.blocking_dependents("rs-uid") == []


def test_non_blocking_dependent_does_not_block() -> None:
    graph = Graph()
    graph.observe(RS)
    graph.observe(obj("Pod", "p", "pod-uid", owners=[ref(RS, block=False)]))
    assert graph.blocking_dependents("rs-uid") == []


def test_dropping_block_owner_deletion_reschedules_waiting_owner() -> None:
    graph = Graph()
    graph.observe(obj("ReplicaSet", "rs", "rs-uid", deleting=True, finalizers=["foregroundDeletion"]))
    graph.observe(POD)
    unblocked = obj("Pod", "p", "pod-uid", owners=[ref(RS, block=False)])
    assert graph.observe(unblocked).attempt_delete == ["rs-uid"]


def test_new_dependent_of_a_foreground_deleting_owner_is_scheduled() -> None:
    graph = Graph()
    graph.observe(obj("ReplicaSet", "rs", "rs-uid", deleting=True, finalizers=["foregroundDeletion"]))
    assert graph.observe(POD).attempt_delete == ["pod-uid"]


def test_orphan_transition_goes_to_the_orphan_queue_before_foreground() -> None:
    graph = Graph()
    graph.observe(RS)
    graph.observe(POD)
    both = obj("ReplicaSet", "rs", "rs-uid", deleting=True, finalizers=["orphan", "foregroundDeletion"])
    changes = graph.observe(both)
    assert changes.attempt_orphan == ["rs-uid"] and changes.attempt_delete == []
    after_orphaning = obj("ReplicaSet", "rs", "rs-uid", deleting=True, finalizers=["foregroundDeletion"])
    assert graph.observe(after_orphaning).attempt_delete == ["pod-uid", "rs-uid"]


def test_cross_namespace_owner_is_reported_and_dependent_rechecked() -> None:
    graph = Graph()
    graph.observe(RS)
    elsewhere = obj("Pod", "p", "pod-uid", owners=[ref(RS)], namespace="other")
    changes = graph.observe(elsewhere)
    assert changes.attempt_delete == ["pod-uid"]
    assert [(d.name, r["uid"]) for d, r in changes.invalid_namespace] == [("p", "rs-uid")]


def test_cluster_scoped_dependent_of_namespaced_kind_is_reported_not_linked() -> None:
    graph = Graph()
    node = obj("Node", "n1", "node-uid", owners=[ref(RS)], namespace=None)
    changes = graph.observe(node)
    assert changes.attempt_delete == [] and len(changes.invalid_namespace) == 1
    assert "rs-uid" not in graph.nodes


def test_namespaced_dependent_of_cluster_scoped_owner() -> None:
    graph = Graph()
    node = obj("Node", "n1", "node-uid", namespace=None)
    mirror = obj("Pod", "m", "mirror-uid", owners=[ref(node, block=False)])
    graph.observe(node)
    assert graph.observe(mirror).attempt_delete == []
    assert graph.forget(node).attempt_delete == ["mirror-uid"]
    assert ("", "node-uid") in graph.absent


def test_unknown_owner_kinds_are_not_tracked() -> None:
    graph = Graph()
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "w-uid"}
    changes = graph.observe(obj("Pod", "p", "pod-uid", owners=[widget]))
    assert changes.attempt_delete == [] and "w-uid" not in graph.nodes


def test_diff_references_by_uid() -> None:
    a, b, c = {"uid": "a"}, {"uid": "b", "blockOwnerDeletion": True}, {"uid": "c"}
    b2 = {"uid": "b", "blockOwnerDeletion": False}
    added, removed, changed = diff_references([a, b], [b2, c])
    assert added == [c] and removed == [a] and changed == [(b, b2)]


def test_absent_cache_is_bounded_lru() -> None:
    cache = AbsentOwners(size=2)
    cache.add("ns", "1")
    cache.add("ns", "2")
    assert ("ns", "1") in cache  # touch: "2" is now the oldest
    cache.add("ns", "3")
    assert ("ns", "1") in cache and ("ns", "3") in cache and ("ns", "2") not in cache

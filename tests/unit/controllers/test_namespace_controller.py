"""Namespace controller decisions (deletion order, status conditions, finalize body) and the
serviceaccount controller's notion of an active namespace."""

from __future__ import annotations

from typing import Any

from kubelite.controllers.namespace import (
    CONDITION_TYPES,
    Remaining,
    deletion_phases,
    finalized,
    requeue_delay,
    updated_conditions,
)
from kubelite.controllers.serviceaccount import is_active
from kubelite.objects.registry import REGISTRY

NOW, LATER = "2025-01-01T00:00:00Z", "2025-01-01T00:01:00Z"


def test_phases_pods_first_events_last_each_storage_once() -> None:
    phases = deletion_phases()
    assert [rt.plural for rt in phases[0]] == ["pods"]
    assert [(rt.group, rt.plural) for rt in phases[-1]] == [("", "events")]  # events.k8s.io shares storage
    middle = {(rt.group, rt.plural) for rt in phases[1]}
    assert {("", "configmaps"), ("", "secrets"), ("", "serviceaccounts"), ("", "services"),
            ("apps", "replicasets"), ("apps", "deployments"), ("coordination.k8s.io", "leases"),
            ("discovery.k8s.io", "endpointslices"), ("", "endpoints")} <= middle
    assert ("", "bindings") not in middle  # create-only
    assert all(rt.namespaced for phase in phases for rt in phase)
    namespaced_deletable = {rt.storage_key for rt in REGISTRY.resources if rt.namespaced and "delete" in rt.verbs}
    assert {rt.storage_key for phase in phases for rt in phase} == namespaced_deletable


def remaining(**counts: int) -> Remaining:
    result = Remaining()
    result.counts = dict(counts)
    return result


def by_type(conditions: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {c["type"]: c for c in conditions}


def test_first_pass_sets_every_condition_type() -> None:
    conditions = updated_conditions([], Remaining(), NOW)
    assert conditions is not None and [c["type"] for c in conditions] == list(CONDITION_TYPES)
    assert all(c["status"] == "False" and c["lastTransitionTime"] == NOW for c in conditions)
    assert by_type(conditions)["NamespaceContentRemaining"]["reason"] == "ContentRemoved"
    assert updated_conditions(conditions, Remaining(), LATER) is None  # unchanged: no write


def test_remaining_content_and_finalizers_are_reported_as_upstream() -> None:
    left = Remaining()
    pods = REGISTRY.by_path("", "v1", "pods")
    rs = REGISTRY.by_path("apps", "v1", "replicasets")
    assert pods is not None and rs is not None
    left.add(pods, [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}])
    left.add(rs, [{"metadata": {"name": "r", "finalizers": ["foregroundDeletion"]}}])
    left.add(rs, [])  # an empty kind adds nothing
    conditions = by_type(updated_conditions([], left, NOW) or [])
    content = conditions["NamespaceContentRemaining"]
    assert content["status"] == "True" and content["reason"] == "SomeResourcesRemain"
    assert content["message"] == ("Some resources are remaining: pods. has 2 resource instances, "
                                  "replicasets.apps has 1 resource instances")
    fins = conditions["NamespaceFinalizersRemaining"]
    assert fins["status"] == "True" and fins["reason"] == "SomeFinalizerRemain"
    assert fins["message"] == "Some finalizers are remaining: foregroundDeletion in 1 resource instances"
    assert not left.empty


def test_transition_time_moves_only_when_status_flips() -> None:
    first = updated_conditions([], remaining(**{"pods.": 2}), NOW) or []
    second = by_type(updated_conditions(first, remaining(**{"pods.": 1}), LATER) or [])
    assert second["NamespaceContentRemaining"]["lastTransitionTime"] == NOW  # still True, new message
    assert second["NamespaceContentRemaining"]["message"].endswith("pods. has 1 resource instances")
    third = by_type(updated_conditions(list(second.values()), Remaining(), LATER) or [])
    assert third["NamespaceContentRemaining"]["status"] == "False"
    assert third["NamespaceContentRemaining"]["lastTransitionTime"] == LATER


def test_delete_errors_become_content_failure() -> None:
    left = Remaining(errors=["secrets: boom"])
    condition = by_type(updated_conditions([], left, NOW) or [])["NamespaceDeletionContentFailure"]
    assert condition["status"] == "True" and condition["reason"] == "ContentDeletionFailed"
    assert condition["message"] == "Failed to delete all resource types, 1 remaining: secrets: boom"
    assert not left.empty


def test_finalize_body_drops_only_our_finalizer() -> None:
    namespace: dict[str, Any] = {"metadata": {"name": "x", "resourceVersion": "5"},
                 "spec": {"finalizers": ["kubernetes", "example.com/other"]}, "status": {"phase": "Terminating"}}
    body = finalized(namespace)
    assert body["spec"]["finalizers"] == ["example.com/other"]
    assert body["metadata"]["resourceVersion"] == "5"  # the update is guarded by it
    assert namespace["spec"]["finalizers"] == ["kubernetes", "example.com/other"]  # input untouched


def test_requeue_backoff_is_capped() -> None:
    delays = [requeue_delay(n) for n in range(10)]
    assert delays[0] == 0.1 and delays == sorted(delays) and max(delays) == 5.0


def test_serviceaccounts_only_in_active_namespaces() -> None:
    assert is_active({"metadata": {"name": "a"}, "status": {"phase": "Active"}})
    assert is_active({"metadata": {"name": "a"}})
    assert not is_active({"metadata": {"name": "a", "deletionTimestamp": NOW}, "status": {"phase": "Terminating"}})
    assert not is_active({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}})
    assert not is_active(None)

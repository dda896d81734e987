"""The garbage collector's decisions for one object, and the metadata patches it sends."""

from __future__ import annotations

from typing import Any

from kubelite.controllers.garbagecollector.decide import (
    NOTHING,
    Classified,
    Verdict,
    classify_owner,
    unblocked_patch,
    verdict,
    without_finalizer_patch,
    without_owners_patch,
)

Obj = dict[str, Any]
A = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "a-uid", "blockOwnerDeletion": True}
B = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "b-uid"}


def item(*, finalizers: list[str] | None = None, refs: list[Obj] | None = None) -> Obj:
    meta: Obj = {"name": "x", "uid": "x-uid", "resourceVersion": "7", "ownerReferences": refs or [A, B]}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"metadata": meta}


def owner(uid: str, *, deleting: bool = False, finalizers: list[str] | None = None) -> Obj:
    meta: Obj = {"uid": uid, "finalizers": finalizers or []}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": meta}


def test_classify_owner() -> None:
    assert classify_owner(A, None) == "dangling"
    assert classify_owner(A, owner("other-uid")) == "dangling"  # same name, new object
    assert classify_owner(A, owner("a-uid")) == "solid"
    assert classify_owner(A, owner("a-uid", deleting=True)) == "solid"  # background/orphan: not waiting
    assert classify_owner(A, owner("a-uid", deleting=True, finalizers=["foregroundDeletion"])) == "waiting"


def test_solid_owner_keeps_object_and_drops_gone_references() -> None:
    assert verdict(item(), Classified(solid=[A, B]), has_dependents=False) == NOTHING
    v = verdict(item(), Classified(solid=[B], dangling=[A]), has_dependents=False)
    assert v == Verdict("remove_refs", remove_uids=frozenset({"a-uid"}))
    v = verdict(item(), Classified(solid=[B], waiting=[A]), has_dependents=True)
    assert v.action == "remove_refs" and v.remove_uids == {"a-uid"}


def test_no_owner_left_deletes_in_background_or_as_its_finalizers_say() -> None:
    assert verdict(item(), Classified(dangling=[A, B]), has_dependents=True) == Verdict("delete", "Background")
    assert verdict(item(finalizers=["orphan"]), Classified(dangling=[A]), has_dependents=True).propagation == "Orphan"
    fg = verdict(item(finalizers=["foregroundDeletion"]), Classified(dangling=[A]), has_dependents=False)
    assert fg.propagation == "Foreground"


def test_waiting_owner_deletes_dependent_with_dependents_in_foreground() -> None:
    assert verdict(item(), Classified(waiting=[A]), has_dependents=True) == Verdict("delete", "Foreground")
    assert verdict(item(), Classified(waiting=[A]), has_dependents=False) == Verdict("delete", "Background")
    cycle = verdict(item(), Classified(waiting=[A]), has_dependents=True, dependent_deleting_dependents=True)
    assert cycle.unblock_first and cycle.propagation == "Foreground"


def test_unresolvable_reference_freezes_the_object() -> None:
    assert verdict(item(), Classified(dangling=[A], unresolvable=[B]), has_dependents=False) == NOTHING


def test_owner_reference_patch_is_guarded_and_removes_the_field_when_empty() -> None:
    assert without_owners_patch(item(), {"a-uid"}) == {"metadata": {"resourceVersion": "7", "ownerReferences": [B]}}
    assert without_owners_patch(item(), {"a-uid", "b-uid"}) == {
        "metadata": {"resourceVersion": "7", "ownerReferences": None}}
    assert without_owners_patch(item(), {"zzz"}) is None


def test_finalizer_patch() -> None:
    obj = item(finalizers=["orphan", "example.com/keep"])
    assert without_finalizer_patch(obj, "orphan") == {
        "metadata": {"resourceVersion": "7", "finalizers": ["example.com/keep"]}}
    assert without_finalizer_patch(item(finalizers=["orphan"]), "orphan") == {
        "metadata": {"resourceVersion": "7", "finalizers": None}}
    assert without_finalizer_patch(obj, "foregroundDeletion") is None


def test_unblock_patch() -> None:
    patch = unblocked_patch(item())
    assert patch is not None
    assert [r.get("blockOwnerDeletion") for r in patch["metadata"]["ownerReferences"]] == [False, None]
    assert unblocked_patch(item(refs=[B])) is None

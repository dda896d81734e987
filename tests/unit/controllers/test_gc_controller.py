"""The garbage collector's reads and guarded writes, against an in-memory fake of the API client.

The fake keeps objects by (resource, namespace, name), bumps resourceVersion on writes and
honours the preconditions the collector relies on (resourceVersion in a merge patch, uid and
resourceVersion on delete), so conflict handling is exercised as the real API would trigger it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubelite.client import InformerFactory
from kubelite.client.resources import PODS, REPLICASETS
from kubelite.controllers.garbagecollector import GarbageCollector
from kubelite.controllers.garbagecollector.controller import RetryLater
from kubelite.objects.errors import Conflict, NotFound
from kubelite.objects.registry import ResourceType

Obj = dict[str, Any]


class FakeClient:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], Obj] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.rv = 100

    def put(self, rt: ResourceType, obj: Obj) -> Obj:
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[(rt.plural, obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj)

    def _find(self, rt: ResourceType, name: str, namespace: str | None) -> Obj:
        try:
            return self.objects[(rt.plural, namespace, name)]
        except KeyError:
            raise NotFound(f'{rt.plural} "{name}" not found') from None

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Obj:
        self.calls.append(("get", rt.plural, name))
        return copy.deepcopy(self._find(rt, name, namespace))

    async def patch(self, rt: ResourceType, name: str, body: Obj, namespace: str | None = None, **_: Any) -> Obj:
        self.calls.append(("patch", rt.plural, name, body))
        current = copy.deepcopy(self._find(rt, name, namespace))
        fields = dict(body["metadata"])
        if fields.pop("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise Conflict("the object has been modified")
        for key, value in fields.items():
            if value is None:
                current["metadata"].pop(key, None)
            else:
                current["metadata"][key] = value
        return self.put(rt, current)

    async def delete(self, rt: ResourceType, name: str, namespace: str | None = None, *,
                     propagation: str | None = None, preconditions: Obj | None = None, **_: Any) -> Obj:
        self.calls.append(("delete", rt.plural, name, propagation, preconditions))
        current = self._find(rt, name, namespace)
        for key, value in (preconditions or {}).items():
            if current["metadata"].get(key) != value:
                raise Conflict(f"Precondition failed: {key}")
        del self.objects[(rt.plural, namespace, name)]
        return current

    async def create(self, rt: ResourceType, obj: Obj, namespace: str | None = None, **_: Any) -> Obj:
        return obj  # events

    def count(self, verb: str) -> int:
        return sum(1 for call in self.calls if call[0] == verb)


def rs(name: str = "rs", uid: str = "rs-uid", **meta: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "ns", "uid": uid, **meta}}


def pod(name: str, owners: list[Obj], **meta: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns", "uid": f"{name}-uid", "ownerReferences": owners, **meta}}


def ref(owner: Obj, *, block: bool = True) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": block}


@pytest.fixture
def fake() -> FakeClient:
    return FakeClient()


@pytest.fixture
def gc(fake: FakeClient) -> GarbageCollector:
    return GarbageCollector(fake, InformerFactory(fake))  # type: ignore[arg-type]


def observe(gc: GarbageCollector, fake: FakeClient, rt: ResourceType, obj: Obj) -> Obj:
    """Write to the fake API and deliver the informer event, as the watch would."""
    stored = fake.put(rt, obj)
    gc.informers.informer(rt)._apply("ADDED", stored)
    return stored


def drain(gc: GarbageCollector) -> list[str]:
    keys = []
    while len(gc.queue):
        keys.append(gc.queue._queue.popleft())
        gc.queue._dirty.discard(keys[-1])
    return keys


async def test_dependents_of_a_deleted_owner_are_deleted_with_guarded_background_deletes(
        gc: GarbageCollector, fake: FakeClient) -> None:
    owner = observe(gc, fake, REPLICASETS, rs())
    pods = [observe(gc, fake, PODS, pod(f"p{i}", [ref(owner)])) for i in range(3)]
    del fake.objects[("replicasets", "ns", "rs")]
    gc.informers.informer(REPLICASETS)._apply("DELETED", owner)
    assert sorted(drain(gc)) == ["p0-uid", "p1-uid", "p2-uid"]
    for p in pods:
        await gc.sync(p["metadata"]["uid"])
    assert not [key for key in fake.objects if key[0] == "pods"]
    assert fake.count("get") == 0  # the owner's deletion was observed: absent without asking
    deletes = [c for c in fake.calls if c[0] == "delete"]
    assert deletes[0][3] == "Background"
    assert deletes[0][4] == {"uid": "p0-uid", "resourceVersion": pods[0]["metadata"]["resourceVersion"]}


async def test_owner_absence_is_checked_live_once(gc: GarbageCollector, fake: FakeClient) -> None:
    ghost = rs("ghost", "ghost-uid")
    first = observe(gc, fake, PODS, pod("a", [ref(ghost)]))
    observe(gc, fake, PODS, pod("b", [ref(ghost)]))
    assert drain(gc) == ["ghost-uid"]  # a virtual owner to verify
    await gc.sync("ghost-uid")
    assert sorted(drain(gc)) == ["a-uid", "b-uid"]
    await gc.sync(first["metadata"]["uid"])
    await gc.sync("b-uid")
    assert fake.count("get") == 1 and fake.count("delete") == 2


async def test_virtual_owner_that_exists_is_looked_at_again_later(gc: GarbageCollector, fake: FakeClient) -> None:
    owner = fake.put(REPLICASETS, rs())  # in the API, not yet seen by the informer
    observe(gc, fake, PODS, pod("a", [ref(owner)]))
    drain(gc)
    await gc.sync("rs-uid")
    assert "rs-uid" in gc.queue._timers and gc.graph.nodes["rs-uid"].dependents == {"a-uid"}
    gc.queue.shutdown()
    assert fake.count("delete") == 0


async def test_delete_conflict_on_unrelated_change_still_deletes(gc: GarbageCollector, fake: FakeClient) -> None:
    stale = observe(gc, fake, PODS, pod("a", [ref(rs())]))
    fresh = copy.deepcopy(stale)
    fresh["status"] = {"phase": "Running"}
    fake.put(PODS, fresh)  # the kubelet wrote status; our cache still has `stale`
    gc.graph.absent.add("ns", "rs-uid")
    await gc.sync("a-uid")
    deletes = [c for c in fake.calls if c[0] == "delete"]
    assert [d[4] for d in deletes] == [{"uid": "a-uid", "resourceVersion": stale["metadata"]["resourceVersion"]},
                                       {"uid": "a-uid"}]
    assert ("pods", "ns", "a") not in fake.objects


async def test_delete_conflict_on_changed_owners_decides_again(gc: GarbageCollector, fake: FakeClient) -> None:
    stale = observe(gc, fake, PODS, pod("a", [ref(rs())]))
    adopted = copy.deepcopy(stale)
    adopted["metadata"]["ownerReferences"] = [ref(rs("new", "new-uid"))]
    fake.put(PODS, adopted)
    gc.graph.absent.add("ns", "rs-uid")
    with pytest.raises(RetryLater):
        await gc.sync("a-uid")
    assert ("pods", "ns", "a") in fake.objects


async def test_live_owner_keeps_dependent_and_dangling_reference_is_dropped(
        gc: GarbageCollector, fake: FakeClient) -> None:
    live = observe(gc, fake, REPLICASETS, rs("live", "live-uid"))
    gone = rs("gone", "gone-uid")
    observe(gc, fake, PODS, pod("a", [ref(gone), ref(live)]))
    await gc.sync("a-uid")
    remaining = fake.objects[("pods", "ns", "a")]["metadata"]["ownerReferences"]
    assert [r["uid"] for r in remaining] == ["live-uid"]
    assert fake.count("delete") == 0


async def test_patch_conflict_rereads_and_recomputes(gc: GarbageCollector, fake: FakeClient) -> None:
    live = observe(gc, fake, REPLICASETS, rs("live", "live-uid"))
    stale = observe(gc, fake, PODS, pod("a", [ref(rs("gone", "gone-uid")), ref(live)]))
    changed = copy.deepcopy(stale)
    changed["metadata"]["labels"] = {"x": "y"}
    fake.put(PODS, changed)
    await gc.sync("a-uid")
    final = fake.objects[("pods", "ns", "a")]["metadata"]
    assert [r["uid"] for r in final["ownerReferences"]] == ["live-uid"] and final["labels"] == {"x": "y"}
    assert fake.count("patch") == 2


async def test_foreground_owner_is_released_when_no_blocking_dependent_remains(
        gc: GarbageCollector, fake: FakeClient) -> None:
    owner = observe(gc, fake, REPLICASETS, rs())
    observe(gc, fake, PODS, pod("blocking", [ref(owner)]))
    observe(gc, fake, PODS, pod("free", [ref(owner, block=False)]))
    terminating = rs(deletionTimestamp="2025-01-01T00:00:00Z", finalizers=["foregroundDeletion"])
    stored = fake.put(REPLICASETS, terminating)
    gc.informers.informer(REPLICASETS)._apply("MODIFIED", stored)
    assert drain(gc) == ["blocking-uid", "free-uid", "rs-uid"]
    await gc.sync("rs-uid")  # still blocked: the blocking dependent is queued again
    assert drain(gc) == ["blocking-uid"]
    assert fake.objects[("replicasets", "ns", "rs")]["metadata"]["finalizers"] == ["foregroundDeletion"]
    await gc.sync("blocking-uid")  # owner is waiting, the pod has no dependents: background delete
    assert fake.calls[-1][:4] == ("delete", "pods", "blocking", "Background")
    gc.informers.informer(PODS)._apply("DELETED", gc.informers.informer(PODS).get("ns/blocking") or {})
    assert "rs-uid" in drain(gc)
    await gc.sync("rs-uid")
    assert "finalizers" not in fake.objects[("replicasets", "ns", "rs")]["metadata"]


async def test_orphaning_releases_every_dependent_then_the_owner(gc: GarbageCollector, fake: FakeClient) -> None:
    owner = observe(gc, fake, REPLICASETS, rs())
    other = rs("other", "other-uid")
    observe(gc, fake, PODS, pod("a", [ref(owner)]))
    observe(gc, fake, PODS, pod("b", [ref(owner), ref(other)]))
    stored = fake.put(REPLICASETS, rs(deletionTimestamp="2025-01-01T00:00:00Z", finalizers=["orphan"]))
    gc.informers.informer(REPLICASETS)._apply("MODIFIED", stored)
    assert len(gc.orphan_queue) == 1
    await gc.sync_orphan("rs-uid")
    assert "ownerReferences" not in fake.objects[("pods", "ns", "a")]["metadata"]
    assert [r["uid"] for r in fake.objects[("pods", "ns", "b")]["metadata"]["ownerReferences"]] == ["other-uid"]
    assert "finalizers" not in fake.objects[("replicasets", "ns", "rs")]["metadata"]
    assert fake.count("delete") == 0

"""The pure parts of the ReplicaSet controller: deletion ranking, expectations, slow start, status,
pod construction and claiming (adopt / release)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubelite.controllers.replicaset import (
    Claimer,
    Expectations,
    calculate_status,
    deletion_order,
    pod_from_template,
    slow_start_batch,
    status_unchanged,
)
from kubelite.objects.errors import NotFound
from kubelite.objects.selectors import selector_from_dict

NOW = 1_700_000_000.0
Obj = dict[str, Any]


def stamp(seconds_ago: float) -> str:
    from kubelite.controllers.replicaset import rfc3339

    return rfc3339(NOW - seconds_ago)


def pod(name: str, *, node: str = "", phase: str = "Pending", ready: bool = False, ready_ago: float = 100,
        restarts: int = 0, created_ago: float = 1000, cost: int | None = None, labels: Obj | None = None,
        owner: str | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "creationTimestamp": stamp(created_ago),
                 "labels": labels if labels is not None else {"app": "a"}}
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "uid": f"uid-{owner}", "controller": True}]
    status: Obj = {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts}]}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": stamp(ready_ago)}]
    return {"metadata": meta, "spec": {"nodeName": node}, "status": status}


def order(*pods: Obj, related: list[Obj] | None = None) -> list[str]:
    return [p["metadata"]["name"] for p in deletion_order(list(pods), related or [], now=NOW)]


# ----- deletion ranking --------------------------------------------------------------------------


def test_unassigned_pods_go_before_assigned_ones() -> None:
    assert order(pod("bound", node="n1", phase="Running", ready=True), pod("loose")) == ["loose", "bound"]


def test_pending_before_unknown_before_running() -> None:
    pods = [pod("run", node="n", phase="Running"), pod("unk", node="n", phase="Unknown"), pod("pend", node="n")]
    assert order(*pods) == ["pend", "unk", "run"]


def test_not_ready_before_ready() -> None:
    assert order(pod("ready", phase="Running", ready=True), pod("slow", phase="Running")) == ["slow", "ready"]


def test_lower_deletion_cost_first() -> None:
    assert order(pod("dear", cost=10), pod("cheap", cost=-5)) == ["cheap", "dear"]


def test_doubled_up_pods_go_first() -> None:
    crowded, alone = pod("crowded", node="busy", phase="Running"), pod("alone", node="quiet", phase="Running")
    related = [crowded, alone, pod("other", node="busy", phase="Running")]
    assert order(alone, crowded, related=related) == ["crowded", "alone"]


def test_recently_ready_before_long_ready_in_logarithmic_buckets() -> None:
    fresh = pod("fresh", phase="Running", ready=True, ready_ago=10)
    old = pod("old", phase="Running", ready=True, ready_ago=10_000)
    assert order(old, fresh) == ["fresh", "old"]


def test_more_restarts_first_then_newer_first() -> None:
    assert order(pod("calm", restarts=0), pod("crashy", restarts=4)) == ["crashy", "calm"]
    assert order(pod("old", created_ago=100_000), pod("new", created_ago=10)) == ["new", "old"]


def test_equal_pods_in_one_bucket_are_ordered_by_uid() -> None:
    a, b = pod("b", created_ago=1000), pod("a", created_ago=1001)
    assert order(a, b) == ["a", "b"]  # same log2 bucket: uid-a < uid-b


# ----- expectations and slow start ---------------------------------------------------------------


def test_expectations_wait_for_every_create() -> None:
    exp = Expectations()
    assert exp.satisfied("ns/rs")
    exp.expect_creations("ns/rs", 2)
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")


def test_deletions_are_counted_once_per_pod() -> None:
    exp = Expectations()
    exp.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    exp.deletion_observed("ns/rs", "ns/a")
    exp.deletion_observed("ns/rs", "ns/a")  # terminating, then gone: one observation
    exp.deletion_observed("ns/rs", "ns/unrelated")
    assert not exp.satisfied("ns/rs")
    exp.deletion_observed("ns/rs", "ns/b")
    assert exp.satisfied("ns/rs")


def test_expectations_expire() -> None:
    clock = [0.0]
    exp = Expectations(ttl=300, clock=lambda: clock[0])
    exp.expect_creations("ns/rs", 5)
    clock[0] = 301
    assert exp.satisfied("ns/rs")


async def test_slow_start_batches_double_and_stop_at_first_failure() -> None:
    calls: list[int] = []

    async def ok() -> None:
        calls.append(1)

    assert await slow_start_batch(10, ok) == (10, None)
    assert len(calls) == 10  # batches 1, 2, 4, 3

    attempts = 0

    async def fails_from_fourth() -> None:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts >= 4:
            raise RuntimeError("quota")

    successes, error = await slow_start_batch(100, fails_from_fourth)
    assert attempts == 7 and successes == 3  # batches 1, 2, then 4 of which all fail; no more batches
    assert isinstance(error, RuntimeError)


# ----- status and pods ---------------------------------------------------------------------------


def replica_set(replicas: int = 3, min_ready: int = 0, status: Obj | None = None) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "rs", "namespace": "ns", "uid": "uid-rs", "generation": 2},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                     "selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": {"app": "a", "tier": "web"}, "annotations": {"x": "y"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": status or {"replicas": 0}}


def test_status_counts_labels_readiness_and_availability() -> None:
    pods = [pod("a", labels={"app": "a", "tier": "web"}, phase="Running", ready=True, ready_ago=30),
            pod("b", labels={"app": "a", "tier": "web"}, phase="Running", ready=True, ready_ago=2),
            pod("c", labels={"app": "a"})]
    status = calculate_status(replica_set(min_ready=10), pods, None, now=NOW)
    assert status == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 1}


def test_replica_failure_condition_comes_and_goes() -> None:
    failed = calculate_status(replica_set(), [], RuntimeError("quota exceeded"), now=NOW)
    cond = failed["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"], cond["message"]) == \
        ("ReplicaFailure", "True", "FailedCreate", "quota exceeded")
    assert failed["replicas"] == 0  # replicas is always written, even 0
    healed = calculate_status(replica_set(status=failed), [pod("a")] * 3, None, now=NOW)
    assert "conditions" not in healed


def test_unchanged_status_needs_observed_generation() -> None:
    rs = replica_set(status={"replicas": 0, "observedGeneration": 1})
    status = calculate_status(rs, [], None, now=NOW)
    assert not status_unchanged(rs, status)
    rs["status"]["observedGeneration"] = 2
    assert status_unchanged(rs, status)


def test_pod_from_template() -> None:
    made = pod_from_template(replica_set())
    meta = made["metadata"]
    assert meta["generateName"] == "rs-"
    assert meta["labels"] == {"app": "a", "tier": "web"} and meta["annotations"] == {"x": "y"}
    assert meta["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                        "uid": "uid-rs", "controller": True, "blockOwnerDeletion": True}]
    assert made["spec"] == {"containers": [{"name": "c", "image": "i"}]}
    unlabeled = replica_set()
    unlabeled["spec"]["template"]["metadata"]["labels"] = {}
    with pytest.raises(ValueError):
        pod_from_template(unlabeled)


# ----- claiming ----------------------------------------------------------------------------------


class Patches:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Obj]] = []
        self.checks = 0

    async def patch(self, obj: Obj, body: Obj) -> Obj:
        self.sent.append((obj["metadata"]["name"], body))
        return obj

    async def can_adopt(self) -> None:
        self.checks += 1


async def test_claim_adopts_orphans_keeps_own_and_releases_mismatches() -> None:
    owner = replica_set()
    patches = Patches()
    claimer = Claimer(owner, selector_from_dict({"matchLabels": {"app": "a"}}), patch=patches.patch,
                      can_adopt=patches.can_adopt)
    pods = [pod("mine", owner="rs"), pod("orphan"), pod("orphan2"), pod("theirs", owner="other"),
            pod("strayed", owner="rs", labels={"app": "b"}), pod("stranger", labels={"app": "b"})]
    claimed = await claimer.claim(pods)
    assert [p["metadata"]["name"] for p in claimed] == ["mine", "orphan", "orphan2"]
    assert patches.checks == 1  # the owner is re-read once, before the first adoption
    adopted = patches.sent[0][1]["metadata"]["ownerReferences"][0]
    assert adopted["uid"] == "uid-rs" and adopted["controller"] and adopted["blockOwnerDeletion"]
    assert patches.sent[-1] == ("strayed", {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "uid-rs"}],
                                                         "uid": "uid-strayed"}})


async def test_a_deleting_owner_adopts_nothing_and_a_failed_recheck_is_an_error() -> None:
    owner = replica_set()
    owner["metadata"]["deletionTimestamp"] = stamp(0)
    patches = Patches()
    claimer = Claimer(owner, selector_from_dict({"matchLabels": {"app": "a"}}), patch=patches.patch,
                      can_adopt=patches.can_adopt)
    assert await claimer.claim([pod("orphan"), pod("mine", owner="rs")]) == [pod("mine", owner="rs")]
    assert patches.sent == []

    async def gone() -> None:
        raise NotFound("original ReplicaSet rs is gone")

    claimer = Claimer(replica_set(), selector_from_dict({"matchLabels": {"app": "a"}}), patch=patches.patch,
                      can_adopt=gone)
    with pytest.raises(NotFound):
        await claimer.claim([pod("orphan")])

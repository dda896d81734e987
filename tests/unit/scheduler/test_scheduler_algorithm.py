"""Sampling (percentageOfNodesToScore), rotation, host selection, and the FailedScheduling text."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from kubelite.scheduler.algorithm import Algorithm, num_feasible_nodes_to_find
from kubelite.scheduler.cache import Cache
from kubelite.scheduler.framework import Status
from kubelite.scheduler.messages import fit_error, truncate
from kubelite.scheduler.plugins import default_profile
from kubelite.scheduler.podinfo import PodInfo

Obj = dict[str, Any]


@pytest.mark.parametrize("nodes,expected", [
    (1, 1), (99, 99), (100, 100), (250, 250 * 48 // 100), (1000, 420), (5000, 500), (6000, 300),
    (10_000, 500), (20_000, 1000),
])
def test_adaptive_sampling(nodes: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(nodes) == expected


def test_explicit_percentage_and_floor() -> None:
    assert num_feasible_nodes_to_find(5000, 30) == 1500
    assert num_feasible_nodes_to_find(500, 1) == 100  # never fewer than 100
    assert num_feasible_nodes_to_find(5000, 100) == 5000


def node(name: str, *, cpu: str = "4", memory: str = "8Gi", taints: list[Obj] | None = None,
         unschedulable: bool = False) -> Obj:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}}


def pod(name: str, *, cpu: str | None = None, owner: str = "", **spec: Any) -> PodInfo:
    meta: Obj = {"name": name, "namespace": "ns", "uid": name}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}]
    resources = {"requests": {"cpu": cpu}} if cpu else {}
    return PodInfo.of({"metadata": meta, "spec": {"containers": [{"name": "c", "resources": resources}], **spec}})


def cluster(*nodes: Obj, seed: int = 1) -> tuple[Cache, Algorithm]:
    cache = Cache()
    for n in nodes:
        cache.set_node(n)
    return cache, Algorithm(cache, default_profile(), rng=random.Random(seed))


def test_sampling_stops_early_and_rotates_fairly() -> None:
    cache, algorithm = cluster(*(node(f"n{i:04d}") for i in range(1000)))
    decision = algorithm.schedule(pod("a"))
    assert decision.evaluated == 420 and decision.feasible == 420
    assert algorithm.next_start_index == 420
    algorithm.schedule(pod("b"))
    assert algorithm.next_start_index == 840
    algorithm.schedule(pod("c"))
    assert algorithm.next_start_index == (840 + 420) % 1000


def test_unschedulable_pod_visits_every_node() -> None:
    cache, algorithm = cluster(*(node(f"n{i:04d}", cpu="1") for i in range(300)))
    decision = algorithm.schedule(pod("big", cpu="2"))
    assert decision.node is None and decision.evaluated == 300 and len(decision.statuses) == 300
    assert decision.rejecting_plugins == {"NodeResourcesFit"}


def test_replicas_of_one_owner_spread_two_per_node() -> None:
    cache, algorithm = cluster(node("a"), node("b"), node("c"))
    for i in range(6):
        info = pod(f"r{i}", owner="rs-1")
        decision = algorithm.schedule(info)
        assert decision.node is not None
        cache.assume(info, decision.node)
    assert sorted(Counter(p.node_name for p in cache.pods.values()).values()) == [2, 2, 2]


def test_assumed_pods_are_seen_by_the_next_decision() -> None:
    cache, algorithm = cluster(node("a", cpu="1"), node("b", cpu="1"))
    placed = []
    for i in range(3):
        info = pod(f"p{i}", cpu="600m")
        decision = algorithm.schedule(info)
        if decision.node:
            cache.assume(info, decision.node)
            placed.append(decision.node)
    assert sorted(placed) == ["a", "b"]


def test_ties_are_broken_at_random() -> None:
    chosen = set()
    for seed in range(20):
        _, algorithm = cluster(node("a"), node("b"), node("c"), seed=seed)
        decision = algorithm.schedule(pod("p"))
        assert decision.node is not None
        chosen.add(decision.node)
    assert chosen == {"a", "b", "c"}


def failure(algorithm: Algorithm, cache: Cache, info: PodInfo) -> str:
    from kubelite.scheduler.messages import failed_scheduling_message

    decision = algorithm.schedule(info)
    assert decision.node is None
    return failed_scheduling_message(info, decision.statuses, cache.nodes,
                                     algorithm.profile.filters_for(info), decision.num_nodes)


CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def test_upstream_message_for_taints_and_oversized_requests() -> None:
    cache, algorithm = cluster(node("cp", taints=[CONTROL_PLANE]), node("w1"), node("w2"))
    assert failure(algorithm, cache, pod("big", cpu="8")) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")


def test_no_victims_when_nothing_of_lower_priority_runs() -> None:
    cache, algorithm = cluster(node("w1", cpu="2"), node("w2", cpu="2", unschedulable=True))
    cache.assume(pod("running", cpu="1500m"), "w1")
    assert failure(algorithm, cache, pod("p", cpu="1")) == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable. preemption: 0/2 nodes "
        "are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for "
        "scheduling.")


def test_preemption_policy_never_and_preemptable_victims() -> None:
    cache, algorithm = cluster(node("w1", cpu="2"))
    cache.assume(pod("low", cpu="1500m"), "w1")
    message = failure(algorithm, cache, pod("p", cpu="1", preemptionPolicy="Never", priority=10))
    assert message == ("0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
                       "preemptionPolicy=Never.")
    # evicting the lower-priority pod would make room: upstream would preempt; we leave the part out
    assert failure(algorithm, cache, pod("q", cpu="1", priority=10)) == \
        "0/1 nodes are available: 1 Insufficient cpu."
    # still too small without the victim: the remaining reason is reported
    assert failure(algorithm, cache, pod("r", cpu="1", priority=10, nodeSelector={"x": "y"})).endswith(
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")


def test_histogram_sorts_as_strings_and_counts_every_reason() -> None:
    statuses = {f"n{i}": Status.unschedulable("Insufficient cpu", "Insufficient memory") for i in range(10)}
    statuses["x"] = Status.unresolvable("node(s) were unschedulable")
    assert fit_error(11, statuses) == ("0/11 nodes are available: 1 node(s) were unschedulable, "
                                       "10 Insufficient cpu, 10 Insufficient memory.")


def test_no_nodes_and_truncation() -> None:
    cache, algorithm = cluster()
    assert failure(algorithm, cache, pod("p")) == "no nodes available to schedule pods"
    assert truncate("x" * 2000) == "x" * 1020 + " ..."
    assert truncate("short") == "short"

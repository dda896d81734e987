"""The scheduling queue: priority order, backoff 1s doubling to 10s, unschedulable pods moved by
the cluster events that concern the plugins that rejected them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubelite.scheduler import clusterevents
from kubelite.scheduler.queue import SchedulingQueue, backoff_duration, meaningfully_updated

Obj = dict[str, Any]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pod(name: str, *, priority: int = 0, created: str = "2025-01-01T00:00:00Z", **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created, "resourceVersion": "1"},
            "spec": {"priority": priority, "containers": [{"name": "c"}], **spec}}


def queue() -> tuple[SchedulingQueue, Clock]:
    clock = Clock()
    return SchedulingQueue(clock=clock), clock


def pop_names(q: SchedulingQueue) -> list[str]:
    names = []
    while (qp := q.pop_nowait()) is not None:
        names.append(qp.pod["metadata"]["name"])
    return names


def test_priority_then_creation_then_arrival() -> None:
    q, _ = queue()
    q.add(pod("late", created="2025-01-01T00:00:09Z"))
    q.add(pod("early", created="2025-01-01T00:00:01Z"))
    q.add(pod("urgent", priority=1000, created="2025-01-01T00:00:10Z"))
    q.add(pod("early-too", created="2025-01-01T00:00:01Z"))
    assert pop_names(q) == ["urgent", "early", "early-too", "late"]


def test_backoff_doubles_up_to_ten_seconds() -> None:
    assert [backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_failed_binding_waits_for_its_backoff() -> None:
    q, clock = queue()
    q.add(pod("a"))
    qp = q.pop_nowait()
    assert qp is not None and qp.attempts == 1
    q.requeue_backoff(qp)
    assert q.pop_nowait() is None
    clock.now += 0.99
    assert q.pop_nowait() is None
    clock.now += 0.02
    again = q.pop_nowait()
    assert again is qp and again.attempts == 2
    q.requeue_backoff(again)
    clock.now += 1.5
    assert q.pop_nowait() is None  # second backoff is 2s
    clock.now += 0.6
    assert q.pop_nowait() is qp


def test_unschedulable_pods_wait_for_a_relevant_event() -> None:
    q, clock = queue()
    q.add(pod("taint"))
    q.add(pod("cpu"))
    first, second = q.pop_nowait(), q.pop_nowait()
    assert first is not None and second is not None
    q.requeue_unschedulable(first, {"TaintToleration"})
    q.requeue_unschedulable(second, {"NodeResourcesFit"})
    clock.now += 60
    assert q.pop_nowait() is None  # no event, no retry (backoff alone does not requeue)
    assert q.move(clusterevents.node_update_plugins({"metadata": {"labels": {}}},
                                                    {"metadata": {"labels": {"a": "b"}}})) == 0
    assert q.move(clusterevents.ASSIGNED_POD_DELETED) == 1
    assert pop_names(q) == ["cpu"]
    assert q.move(clusterevents.ANY) == 1
    assert pop_names(q) == ["taint"]


def test_moved_pod_still_backing_off_goes_to_backoff() -> None:
    q, clock = queue()
    q.add(pod("a"))
    qp = q.pop_nowait()
    assert qp is not None
    q.requeue_unschedulable(qp, {"NodeResourcesFit"})
    clock.now += 0.5
    q.move(clusterevents.ANY)
    assert q.counts()["backoff"] == 1 and q.pop_nowait() is None
    clock.now += 0.6
    assert q.pop_nowait() is qp


def test_unschedulable_pods_are_retried_after_five_minutes() -> None:
    q, clock = queue()
    q.add(pod("a"))
    qp = q.pop_nowait()
    assert qp is not None
    q.requeue_unschedulable(qp, {"NodeAffinity"})
    clock.now += 299
    assert q.pop_nowait() is None
    clock.now += 31
    assert q.pop_nowait() is qp


def test_updates_move_only_when_the_pod_really_changed() -> None:
    q, _ = queue()
    old = pod("a")
    q.add(old)
    qp = q.pop_nowait()
    assert qp is not None
    q.requeue_unschedulable(qp, {"TaintToleration"})
    status_only = {**old, "status": {"conditions": [{"type": "PodScheduled", "status": "False"}]},
                   "metadata": {**old["metadata"], "resourceVersion": "2"}}
    assert not meaningfully_updated(old, status_only)
    q.update(old, status_only)
    assert q.counts()["unschedulable"] == 1 and qp.pod is status_only
    tolerant = {**status_only, "spec": {**old["spec"], "tolerations": [{"operator": "Exists"}]}}
    q.update(status_only, tolerant)
    assert q.counts()["backoff"] == 1  # changed, but its 1s backoff has not ended


def test_scheduling_gates_hold_a_pod_until_cleared() -> None:
    q, _ = queue()
    gated = pod("g", schedulingGates=[{"name": "example.com/wait"}])
    q.add(gated)
    assert q.pop_nowait() is None
    q.move(clusterevents.ANY)
    assert q.pop_nowait() is None
    q.update(gated, pod("g"))
    assert pop_names(q) == ["g"]


def test_deleted_pods_vanish_even_in_flight() -> None:
    q, _ = queue()
    q.add(pod("a"))
    q.add(pod("b"))
    q.delete("ns/a")
    qp = q.pop_nowait()
    assert qp is not None and qp.key == "ns/b"
    q.delete("ns/b")
    q.requeue_unschedulable(qp, {"NodeAffinity"})  # a late failure does not resurrect it
    assert len(q) == 0 and q.pop_nowait() is None


@pytest.mark.asyncio
async def test_pop_waits_for_work_and_for_backoff_expiry() -> None:
    q = SchedulingQueue(initial_backoff=0.05, max_backoff=0.05)
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    q.add(pod("a"))
    qp = await asyncio.wait_for(waiter, 1)
    q.requeue_backoff(qp)
    again = await asyncio.wait_for(q.pop(), 1)
    assert again is qp and again.attempts == 2


def test_node_heartbeats_move_nothing_but_real_changes_do() -> None:
    old = {"metadata": {"labels": {"a": "1"}}, "spec": {"unschedulable": True},
           "status": {"allocatable": {"cpu": "1"}, "conditions": [{"type": "Ready", "lastHeartbeatTime": "t1"}]}}
    heartbeat = {**old, "status": {**old["status"], "conditions": [{"type": "Ready", "lastHeartbeatTime": "t2"}]}}
    assert clusterevents.node_update_plugins(old, heartbeat) == frozenset()
    changed = {"metadata": {"labels": {"a": "2"}}, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
               "status": {"allocatable": {"cpu": "2"}}}
    assert clusterevents.node_update_plugins(old, changed) == {
        "NodeUnschedulable", "TaintToleration", "NodeAffinity", "PodTopologySpread", "NodeResourcesFit"}


def test_pod_scheduled_condition_written_only_when_it_changes() -> None:
    from kubelite.scheduler.scheduler import scheduled_condition

    fresh = pod("a")
    condition = scheduled_condition(fresh, "Unschedulable", "0/1 nodes are available: ...")
    assert condition is not None and condition["status"] == "False" and condition["reason"] == "Unschedulable"
    marked = {**fresh, "status": {"conditions": [condition]}}
    assert scheduled_condition(marked, "Unschedulable", "0/1 nodes are available: ...") is None
    changed = scheduled_condition(marked, "Unschedulable", "0/2 nodes are available: ...")
    assert changed is not None and changed["lastTransitionTime"] == condition["lastTransitionTime"]

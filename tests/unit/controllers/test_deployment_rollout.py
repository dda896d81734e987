"""Deployment rollout decisions and status: rolling-update steps, proportional scaling, history
clean-up, Recreate's wait, rollback, and the conditions `kubectl rollout status` reads."""

from __future__ import annotations

from typing import Any

from kubelite.controllers.deployment.recreate import old_pods_running
from kubelite.controllers.deployment.rollback import rolled_back
from kubelite.controllers.deployment.rolling import plan_old_scale_down
from kubelite.controllers.deployment.status import (
    calculate_status,
    get_condition,
    new_condition,
    paused_condition,
    rollout_status,
    set_condition,
    stuck_requeue_delay,
)
from kubelite.controllers.deployment.sync import (
    find_active_or_latest,
    history_to_clean,
    new_replica_set,
    proportional_sizes,
)
from kubelite.controllers.deployment.util import MAX_REPLICAS, REVISION
from kubelite.controllers.replicaset import rfc3339

Obj = dict[str, Any]
NOW = 1_700_000_000.0


def deployment(replicas: int = 3, surge: Any = 1, unavailable: Any = 0, *, generation: int = 1,
               status: Obj | None = None, deadline: int | None = 600, **spec: Any) -> Obj:
    d_spec: Obj = {"replicas": replicas, "selector": {"matchLabels": {"app": "a"}},
                   "strategy": {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                   "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c"}]}},
                   **spec}
    if deadline is not None:
        d_spec["progressDeadlineSeconds"] = deadline
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": "uid-d", "generation": generation},
            "spec": d_spec, "status": status or {}}


def rs(name: str, replicas: int, available: int | None = None, *, created: float = 0, revision: int = 1,
       ready: int | None = None, status_replicas: int | None = None, annotations: Obj | None = None) -> Obj:
    available = replicas if available is None else available
    return {"metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": rfc3339(NOW - 1000 + created),
                         "generation": 1, "annotations": {REVISION: str(revision), **(annotations or {})}},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas if status_replicas is None else status_replicas,
                       "readyReplicas": available if ready is None else ready,
                       "availableReplicas": available, "observedGeneration": 1}}


# ----- rolling update steps ----------------------------------------------------------------------


def test_no_scale_down_while_the_surge_pod_is_unavailable() -> None:
    d, old, new = deployment(3, 1, 0), rs("old", 3), rs("new", 1, 0, created=10)
    assert plan_old_scale_down(d, [old, new], [old], new) == []


def test_one_old_pod_goes_for_each_available_new_one() -> None:
    d, old, new = deployment(3, 1, 0), rs("old", 3), rs("new", 1, 1, created=10)
    assert plan_old_scale_down(d, [old, new], [old], new) == [("old", 2)]


def test_unavailable_old_replicas_are_removed_first_oldest_first() -> None:
    d = deployment(4, 1, 1)
    older, old, new = rs("older", 2, 0), rs("old", 2, 2, created=5), rs("new", 1, 0, created=10)
    # min available 3, total 5, new unavailable 1: budget 1 -> one unhealthy replica of `older`
    assert plan_old_scale_down(d, [older, old, new], [older, old], new) == [("older", 1)]


def test_percentages_allow_two_down_of_ten() -> None:
    d, old, new = deployment(10, "25%", "25%"), rs("old", 10), rs("new", 3, 0, created=10)
    assert plan_old_scale_down(d, [old, new], [old], new) == [("old", 8)]


def test_maxunavailable_only_rollout_scales_old_down_first() -> None:
    d, old, new = deployment(4, 0, 2), rs("old", 4), rs("new", 0, 0, created=10)
    assert plan_old_scale_down(d, [old, new], [old], new) == [("old", 2)]


# ----- proportional scaling, active RS, history --------------------------------------------------


def test_scaling_mid_rollout_is_proportional_to_replica_set_sizes() -> None:
    d = deployment(6, 1, 0)
    old = rs("old", 3, annotations={MAX_REPLICAS: "4"})
    new = rs("new", 1, 0, created=10, annotations={MAX_REPLICAS: "4"})
    planned = [(r["metadata"]["name"], size) for r, size in proportional_sizes(d, [new, old])]
    assert planned == [("old", 5), ("new", 2)]


def test_scaling_to_zero_empties_every_replica_set() -> None:
    d = deployment(0, 1, 0)
    planned = [(r["metadata"]["name"], size)
               for r, size in proportional_sizes(d, [rs("old", 3), rs("new", 1, created=10)])]
    assert sorted(planned) == [("new", 0), ("old", 0)]


def test_leftovers_go_to_the_largest_and_ties_prefer_newer_when_growing() -> None:
    d = deployment(5, 0, 1)
    a = rs("a", 1, annotations={MAX_REPLICAS: "2"})
    b = rs("b", 1, created=10, annotations={MAX_REPLICAS: "2"})
    planned = proportional_sizes(d, [a, b])
    assert [(r["metadata"]["name"], size) for r, size in planned] == [("b", 3), ("a", 2)]


def test_find_active_or_latest() -> None:
    old, new = rs("old", 0), rs("new", 0, created=10)
    assert find_active_or_latest(new, [old]) is new
    assert find_active_or_latest(None, [old, rs("older", 0, created=-10)]) is old
    assert find_active_or_latest(new, [rs("busy", 2)])["metadata"]["name"] == "busy"
    assert find_active_or_latest(rs("new", 1), [rs("busy", 2)]) is None


def test_history_clean_up_takes_lowest_revisions_that_are_scaled_down() -> None:
    olds = [rs("r1", 0, revision=1), rs("r2", 0, revision=2), rs("r3", 1, revision=3), rs("r4", 0, revision=4)]
    d = deployment(revisionHistoryLimit=1)
    assert [r["metadata"]["name"] for r in history_to_clean(d, olds)] == ["r1", "r2"]  # r3 still has a pod
    assert history_to_clean(deployment(revisionHistoryLimit=10), olds) == []


def test_new_replica_set_shape() -> None:
    d = deployment(3, 1, 0, minReadySeconds=5)
    made = new_replica_set(d, [rs("old", 3)], 2)
    pod_hash = made["metadata"]["labels"]["pod-template-hash"]
    assert made["metadata"]["name"] == f"web-{pod_hash}"
    assert made["spec"]["selector"] == {"matchLabels": {"app": "a", "pod-template-hash": pod_hash}}
    assert made["spec"]["template"]["metadata"]["labels"] == {"app": "a", "pod-template-hash": pod_hash}
    assert made["spec"]["replicas"] == 1 and made["spec"]["minReadySeconds"] == 5
    assert made["metadata"]["ownerReferences"][0]["uid"] == "uid-d"
    assert made["metadata"]["annotations"][REVISION] == "2"
    collided = deployment(3, 1, 0, status={"collisionCount": 1})
    assert new_replica_set(collided, [], 1)["metadata"]["name"] != made["metadata"]["name"]


# ----- recreate and rollback ---------------------------------------------------------------------


def test_recreate_waits_for_old_pods() -> None:
    new, old = rs("new", 0), rs("old", 0, status_replicas=0)
    running = {"uid-old": [{"status": {"phase": "Running"}}], "uid-new": [{"status": {"phase": "Pending"}}]}
    assert old_pods_running(new, [old], running)
    finished = {"uid-old": [{"status": {"phase": "Succeeded"}}, {"status": {"phase": "Failed"}}]}
    assert not old_pods_running(new, [old], finished)
    assert old_pods_running(new, [rs("old", 0, status_replicas=1)], {})


def test_rollback_copies_template_and_annotations_but_keeps_bookkeeping() -> None:
    d = deployment()
    d["metadata"]["annotations"] = {REVISION: "3", "kubernetes.io/change-cause": "v3"}
    target = rs("old", 0, revision=1, annotations={"kubernetes.io/change-cause": "v1"})
    target["spec"]["template"] = {"metadata": {"labels": {"app": "a", "pod-template-hash": "h"}},
                                  "spec": {"containers": [{"name": "c", "image": "v1"}]}}
    back = rolled_back(d, target)
    assert back["spec"]["template"]["metadata"]["labels"] == {"app": "a"}
    assert back["metadata"]["annotations"] == {REVISION: "3", "kubernetes.io/change-cause": "v1"}


# ----- status and conditions ---------------------------------------------------------------------


def test_counts_and_available_condition() -> None:
    d = deployment(3, 1, 0)
    old, new = rs("old", 2, 2), rs("new", 2, 1, ready=2)
    status = calculate_status([old, new], new, d, now=NOW)
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"], status["availableReplicas"],
            status["unavailableReplicas"]) == (4, 2, 4, 3, 1)
    assert get_condition(status, "Available")["reason"] == "MinimumReplicasAvailable"
    short = calculate_status([rs("old", 2, 1)], None, d, now=NOW)
    assert get_condition(short, "Available")["reason"] == "MinimumReplicasUnavailable"


def test_set_condition_keeps_transition_time_and_ignores_repeats() -> None:
    status: Obj = {}
    first = new_condition("Progressing", "True", "ReplicaSetUpdated", "a", now=NOW)
    set_condition(status, first)
    set_condition(status, new_condition("Progressing", "True", "ReplicaSetUpdated", "b", now=NOW + 5))
    assert status["conditions"] == [first]
    set_condition(status, new_condition("Progressing", "True", "NewReplicaSetAvailable", "c", now=NOW + 9))
    cond = status["conditions"][0]
    assert cond["lastTransitionTime"] == first["lastTransitionTime"] and cond["lastUpdateTime"] == rfc3339(NOW + 9)


def test_progress_moves_last_update_time_then_completion_is_reported() -> None:
    started = new_condition("Progressing", "True", "NewReplicaSetCreated", "Created", now=NOW - 100)
    d = deployment(3, 1, 0, status={"replicas": 4, "updatedReplicas": 1, "conditions": [started]})
    old, new = rs("old", 2), rs("new", 2, 1, created=10)
    status = rollout_status(d, [old, new], new, now=NOW)
    cond = get_condition(status, "Progressing")
    assert (cond["reason"], cond["message"]) == ("ReplicaSetUpdated", 'ReplicaSet "new" is progressing.')
    assert cond["lastUpdateTime"] == rfc3339(NOW) and cond["lastTransitionTime"] == rfc3339(NOW - 100)
    done = rollout_status(deployment(3, 1, 0, status=status), [rs("new", 3)], rs("new", 3), now=NOW + 1)
    assert get_condition(done, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert get_condition(done, "Progressing")["message"] == 'ReplicaSet "new" has successfully progressed.'


def test_no_progress_past_the_deadline_times_out() -> None:
    stale = new_condition("Progressing", "True", "ReplicaSetUpdated", "x", now=NOW - 11)
    d = deployment(1, deadline=10, status={"replicas": 1, "updatedReplicas": 1, "observedGeneration": 1,
                                           "conditions": [stale]})
    new = rs("new", 1, 0)
    assert stuck_requeue_delay(d, rollout_status(d, [new], new, now=NOW - 5), now=NOW - 5) == 4 + 1  # deadline in 4s, +1s margin
    status = rollout_status(d, [new], new, now=NOW)
    cond = get_condition(status, "Progressing")
    assert (cond["status"], cond["reason"], cond["message"]) == \
        ("False", "ProgressDeadlineExceeded", 'ReplicaSet "new" has timed out progressing.')
    assert stuck_requeue_delay({**d, "status": status}, status, now=NOW) is None


def test_no_deadline_means_no_progressing_condition() -> None:
    d = deployment(1, deadline=None)
    status = rollout_status(d, [rs("new", 1)], rs("new", 1), now=NOW)
    assert get_condition(status, "Progressing") is None


def test_replica_failure_is_surfaced_from_the_new_replica_set() -> None:
    new = rs("new", 1, 0)
    new["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                    "message": "quota", "lastTransitionTime": rfc3339(NOW)}]
    status = rollout_status(deployment(1), [new], new, now=NOW)
    assert get_condition(status, "ReplicaFailure")["message"] == "quota"


def test_pause_and_resume_conditions() -> None:
    paused = deployment(paused=True)
    cond = paused_condition(paused, now=NOW)
    assert (cond["status"], cond["reason"], cond["message"]) == ("Unknown", "DeploymentPaused", "Deployment is paused")
    assert paused_condition({**paused, "status": {"conditions": [cond]}}, now=NOW) is None
    resumed = paused_condition(deployment(status={"conditions": [cond]}), now=NOW)
    assert resumed["reason"] == "DeploymentResumed"
    timed_out = new_condition("Progressing", "False", "ProgressDeadlineExceeded", "x", now=NOW)
    assert paused_condition(deployment(paused=True, status={"conditions": [timed_out]}), now=NOW) is None

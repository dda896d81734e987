"""ReplicaSet and Deployment controllers end to end, driven by the real kubectl.

No scheduler and no nodes: the test plays the kubelet by writing pod status (Running, Ready with
its lastTransitionTime, ready container statuses) through `pods/status`, one pod at a time, and
checks the ReplicaSet sizes the controllers choose at every step.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from kubelite.client import Client, Connection
from kubelite.client.resources import DEPLOYMENTS, PODS, REPLICASETS
from tests.integration.conftest import ServerThread

Obj = dict[str, Any]
TIMEOUT = 15.0


class Cluster:
    """The server plus a REST client on its loop, and the kubelet-ish helpers tests need."""

    def __init__(self, server: ServerThread) -> None:
        self.server = server
        assert server.runtime.socket_path is not None
        self.client = Client(Connection.unix(server.runtime.socket_path))

    def api(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.server.call(getattr(self.client, method)(*args, **kwargs))

    def kubectl(self, *args: str, **kwargs: Any) -> Any:
        return self.server.kubectl(*args, **kwargs)

    def pods(self, ns: str, selector: str = "") -> list[Obj]:
        return list(self.api("list", PODS, ns, label_selector=selector)["items"])

    def rss(self, ns: str) -> list[Obj]:
        return list(self.api("list", REPLICASETS, ns)["items"])

    def deployment(self, ns: str, name: str) -> Obj:
        return dict(self.api("get", DEPLOYMENTS, name, ns))

    def make_ready(self, pod: Obj, *, restarts: int = 0, ready_since: str | None = None) -> None:
        since = ready_since or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        containers = [c["name"] for c in pod["spec"]["containers"]]
        status = {"phase": "Running",
                  "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": since},
                                 {"type": "ContainersReady", "status": "True", "lastTransitionTime": since}],
                  "containerStatuses": [{"name": c, "ready": True, "restartCount": restarts, "image": "x",
                                         "imageID": "", "started": True, "state": {"running": {"startedAt": since}}}
                                        for c in containers]}
        self.api("patch", PODS, pod["metadata"]["name"], {"status": status}, pod["metadata"]["namespace"],
                 subresource="status")

    def set_phase(self, pod: Obj, phase: str) -> None:
        self.api("patch", PODS, pod["metadata"]["name"], {"status": {"phase": phase}}, pod["metadata"]["namespace"],
                 subresource="status")


def wait_for(what: str, check: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def owner_name(obj: Obj) -> str | None:
    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")]
    return refs[0]["name"] if refs else None


def sizes(cluster: Cluster, ns: str) -> dict[str, int]:
    return {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in cluster.rss(ns)}


def revision_of(rs: Obj) -> str:
    return str(rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    server = ServerThread(tmp_path_factory.mktemp("workloads"), controllers="replicaset,deployment").start()
    c = Cluster(server)
    yield c
    server.call(c.client.close())
    server.stop()


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = f"w-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name


def deployment_yaml(name: str, *, replicas: int = 3, strategy: str = "", extra: str = "") -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
{strategy}{extra}  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: app, image: "img:1"}}]
"""


def rolling(surge: Any, unavailable: Any) -> str:
    return f"  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: {surge}, maxUnavailable: {unavailable}}}}}\n"


def ready_all(cluster: Cluster, ns: str, selector: str = "") -> None:
    for pod in cluster.pods(ns, selector):
        if not is_ready(pod):
            cluster.make_ready(pod)


def new_and_old(cluster: Cluster, ns: str, new_image: str) -> tuple[int, int]:
    new = old = 0
    for rs in cluster.rss(ns):
        image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
        if image == new_image:
            new += rs["spec"]["replicas"]
        else:
            old += rs["spec"]["replicas"]
    return new, old


# ----- ReplicaSet ------------------------------------------------------------------------------


def test_create_deployment_makes_one_replica_set_owning_three_pods(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "hello", "--image=x", "--replicas=3", "-n", ns)
    pods = wait_for("3 pods", lambda: (p := cluster.pods(ns)) and len(p) == 3 and p)
    rss = cluster.rss(ns)
    assert len(rss) == 1
    rs = rss[0]
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"hello-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "hello", "pod-template-hash": pod_hash}
    assert owner_name(rs) == "hello"
    ann = rs["metadata"]["annotations"]
    assert ann["deployment.kubernetes.io/revision"] == "1"
    assert ann["deployment.kubernetes.io/desired-replicas"] == "3"
    assert ann["deployment.kubernetes.io/max-replicas"] == "4"
    for pod in pods:
        assert pod["metadata"]["name"].startswith(f"hello-{pod_hash}-")
        assert pod["metadata"]["labels"]["pod-template-hash"] == pod_hash
        ref = pod["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == \
            ("ReplicaSet", rs["metadata"]["name"], True, True)
    d = wait_for("status", lambda: (d := cluster.deployment(ns, "hello"))["status"].get("replicas") == 3 and d)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert d["status"]["observedGeneration"] == 1
    described = wait_for("events", lambda: "ScalingReplicaSet" in (
        out := cluster.kubectl("describe", "deployment", "hello", "-n", ns).stdout) and out)
    assert f"Scaled up replica set hello-{pod_hash} from 0 to 3" in described
    rs_events = wait_for("rs events", lambda: "SuccessfulCreate" in (
        out := cluster.kubectl("describe", "rs", rs["metadata"]["name"], "-n", ns).stdout) and out)
    assert "Created pod: hello-" in rs_events


def test_scale_up_and_down(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "web", "--image=x", "--replicas=2", "-n", ns)
    wait_for("2 pods", lambda: len(cluster.pods(ns)) == 2)
    cluster.kubectl("scale", "deployment/web", "--replicas=5", "-n", ns)
    wait_for("5 pods", lambda: len(cluster.pods(ns)) == 5)
    cluster.kubectl("scale", "deployment/web", "--replicas=1", "-n", ns)
    wait_for("1 pod", lambda: len(cluster.pods(ns)) == 1)
    assert list(sizes(cluster, ns).values()) == [1]
    rs = cluster.rss(ns)[0]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "1"


def test_replica_set_replaces_a_deleted_pod(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=replica_set_yaml("rs1", 2))
    first = wait_for("2 pods", lambda: (p := cluster.pods(ns)) and len(p) == 2 and p)
    victim = first[0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", victim, "-n", ns)
    after = wait_for("replacement", lambda: (p := cluster.pods(ns)) and len(p) == 2 and
                     victim not in {x["metadata"]["name"] for x in p} and p)
    assert all(owner_name(p) == "rs1" for p in after)
    rs = wait_for("status", lambda: (rs := cluster.api("get", REPLICASETS, "rs1", ns))["status"].get(
        "observedGeneration") == 1 and rs["status"]["replicas"] == 2 and rs)
    assert rs["status"]["fullyLabeledReplicas"] == 2


def replica_set_yaml(name: str, replicas: int, min_ready: int = 0) -> str:
    return f"""\
apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  minReadySeconds: {min_ready}
  selector: {{matchLabels: {{rs: {name}}}}}
  template:
    metadata: {{labels: {{rs: {name}}}}}
    spec:
      containers: [{{name: app, image: "img:1"}}]
"""


def test_scale_down_deletes_the_least_useful_pods_first(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=replica_set_yaml("rank", 4))
    pods = wait_for("4 pods", lambda: (p := cluster.pods(ns)) and len(p) == 4 and p)
    pending, not_ready, calm, restarting = (p["metadata"]["name"] for p in pods)
    by_name = {p["metadata"]["name"]: p for p in pods}
    cluster.set_phase(by_name[not_ready], "Running")
    cluster.make_ready(by_name[calm], ready_since="2020-01-01T00:00:00Z")
    cluster.make_ready(by_name[restarting], restarts=3, ready_since="2020-01-01T00:00:00Z")
    wait_for("ready counted", lambda: cluster.api("get", REPLICASETS, "rank", ns)["status"].get("readyReplicas") == 2)
    cluster.kubectl("scale", "rs/rank", "--replicas=3", "-n", ns)
    wait_for("pending pod deleted", lambda: {p["metadata"]["name"] for p in cluster.pods(ns)} ==
             {not_ready, calm, restarting})
    cluster.kubectl("scale", "rs/rank", "--replicas=2", "-n", ns)
    wait_for("not-ready pod deleted", lambda: {p["metadata"]["name"] for p in cluster.pods(ns)} == {calm, restarting})
    cluster.kubectl("scale", "rs/rank", "--replicas=1", "-n", ns)
    wait_for("restarting pod deleted", lambda: {p["metadata"]["name"] for p in cluster.pods(ns)} == {calm})
    events = wait_for("events", lambda: "SuccessfulDelete" in (
        out := cluster.kubectl("describe", "rs", "rank", "-n", ns).stdout) and out)
    assert f"Deleted pod: {pending}" in events


def test_adopts_matching_orphans_and_releases_relabelled_pods(cluster: Cluster, ns: str) -> None:
    orphan = {"metadata": {"name": "orphan", "labels": {"rs": "adopt"}},
              "spec": {"containers": [{"name": "app", "image": "img:1"}]}}
    cluster.api("create", PODS, orphan, ns)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=replica_set_yaml("adopt", 2))
    pods = wait_for("2 owned pods", lambda: (p := cluster.pods(ns)) and len(p) == 2 and
                    all(owner_name(x) == "adopt" for x in p) and p)
    assert "orphan" in {p["metadata"]["name"] for p in pods}
    cluster.kubectl("label", "pod", "orphan", "rs=gone", "--overwrite", "-n", ns)
    released = wait_for("released", lambda: owner_name(p := cluster.api("get", PODS, "orphan", ns)) is None and p)
    assert not released["metadata"].get("ownerReferences")
    wait_for("replacement", lambda: len(cluster.pods(ns, "rs=adopt")) == 2)


def test_available_replicas_wait_for_min_ready_seconds(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=replica_set_yaml("slow", 1, min_ready=1))
    pod = wait_for("pod", lambda: (p := cluster.pods(ns)) and p[0])
    cluster.make_ready(pod)
    rs = wait_for("ready", lambda: (rs := cluster.api("get", REPLICASETS, "slow", ns))["status"].get(
        "readyReplicas") == 1 and rs)
    assert not rs["status"].get("availableReplicas")
    wait_for("available after minReadySeconds",
             lambda: cluster.api("get", REPLICASETS, "slow", ns)["status"].get("availableReplicas") == 1, timeout=5)


# ----- Deployment rollouts ---------------------------------------------------------------------


def drive_rollout(cluster: Cluster, ns: str, image: str, *, check: Callable[[], None],
                  steps: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """Make new pods ready one at a time until the rollout ends; record (new, old) RS sizes at
    every settled step, calling `check` on every poll."""
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        check()
        state = new_and_old(cluster, ns, image)
        time.sleep(0.2)  # settle: the controllers act on each change within milliseconds
        if new_and_old(cluster, ns, image) != state:
            continue
        if not seen or seen[-1] != state:
            seen.append(state)
        if state[1] == 0 and all(is_ready(p) for p in cluster.pods(ns)):
            return seen
        waiting = [p for p in cluster.pods(ns) if not is_ready(p)]
        if waiting:
            cluster.make_ready(waiting[0])
    raise AssertionError(f"rollout did not finish; saw {seen}")


def test_rolling_update_max_surge_one_max_unavailable_zero(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=deployment_yaml("roll", strategy=rolling(1, 0)))
    wait_for("3 pods", lambda: len(cluster.pods(ns)) == 3)
    ready_all(cluster, ns)
    cluster.kubectl("rollout", "status", "deployment/roll", "-n", ns, "--timeout=20s")
    started = time.monotonic()
    cluster.kubectl("set", "image", "deployment/roll", "app=img:2", "-n", ns)
    status = cluster.server.popen_kubectl("rollout", "status", "deployment/roll", "-n", ns, "--timeout=60s")

    def check() -> None:
        pods = cluster.pods(ns)
        assert len(pods) <= 4, "maxSurge=1 exceeded"
        assert sum(1 for p in pods if is_ready(p)) >= 3, "maxUnavailable=0 violated"

    try:
        steps = drive_rollout(cluster, ns, "img:2", check=check)
        out, err = status.communicate(timeout=30)
    finally:
        if status.poll() is None:
            status.kill()
            status.communicate()
    elapsed = time.monotonic() - started
    assert status.returncode == 0, err
    assert 'deployment "roll" successfully rolled out' in out
    assert steps == [(1, 3), (2, 2), (3, 1), (3, 0)]
    d = cluster.deployment(ns, "roll")
    assert d["status"]["updatedReplicas"] == d["status"]["availableReplicas"] == 3
    progressing = [c for c in d["status"]["conditions"] if c["type"] == "Progressing"][0]
    assert progressing["reason"] == "NewReplicaSetAvailable"
    assert progressing["message"].endswith("has successfully progressed.")
    print(f"\n3-replica rollout (maxSurge=1, maxUnavailable=0), set image -> rollout status: {elapsed:.2f}s")


def test_rolling_update_percentages_round_surge_up_and_unavailable_down(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=deployment_yaml("pct", replicas=10,
                                                                          strategy=rolling('"25%"', '"25%"')))
    wait_for("10 pods", lambda: len(cluster.pods(ns)) == 10)
    ready_all(cluster, ns)
    wait_for("available", lambda: cluster.deployment(ns, "pct")["status"].get("availableReplicas") == 10)
    cluster.kubectl("set", "image", "deployment/pct", "app=img:2", "-n", ns)

    def check() -> None:
        pods = cluster.pods(ns)
        assert len(pods) <= 13, "maxSurge 25% of 10 rounds up to 3"
        assert sum(1 for p in pods if is_ready(p)) >= 8, "maxUnavailable 25% of 10 rounds down to 2"

    steps = drive_rollout(cluster, ns, "img:2", check=check)
    # new RS to 3 (surge), old down to 8 (unavailable 2, the new pods count as unavailable),
    # then new to 5: 13 in all. Rounding the other way would settle at (5, 7).
    assert steps[0] == (5, 8)
    assert steps[-1] == (10, 0)


def test_rollout_history_and_undo_reuse_old_replica_sets(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "undo", "--image=img:1", "--replicas=1", "-n", ns)
    first = wait_for("rs 1", lambda: (r := cluster.rss(ns)) and r[0])
    for image in ("img:2", "img:3"):
        cluster.kubectl("set", "image", "deployment/undo", f"*={image}", "-n", ns)
        wait_for(f"rs for {image}", lambda image=image: any(
            rs["spec"]["template"]["spec"]["containers"][0]["image"] == image for rs in cluster.rss(ns)))
    history = wait_for("3 revisions", lambda: "3 " in (
        out := cluster.kubectl("rollout", "history", "deployment/undo", "-n", ns).stdout) and out)
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2", "3"]

    cluster.kubectl("rollout", "undo", "deployment/undo", "--to-revision=1", "-n", ns)
    reused = wait_for("rs 1 at revision 4", lambda: (rs := cluster.api(
        "get", REPLICASETS, first["metadata"]["name"], ns)) and revision_of(rs) == "4" and rs)
    assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert len(cluster.rss(ns)) == 3, "undo reuses the old ReplicaSet"
    wait_for("deployment revision 4", lambda: cluster.deployment(ns, "undo")["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"] == "4")

    cluster.kubectl("rollout", "undo", "deployment/undo", "-n", ns)  # back to the previous: revision 3
    third = wait_for("img:3 at revision 5", lambda: [
        rs for rs in cluster.rss(ns) if revision_of(rs) == "5"
        and rs["spec"]["template"]["spec"]["containers"][0]["image"] == "img:3"])
    assert third[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "3"
    history = cluster.kubectl("rollout", "history", "deployment/undo", "-n", ns).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "4", "5"]


def test_pause_blocks_rollout_but_not_scaling_and_resume_continues(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "paused", "--image=img:1", "--replicas=2", "-n", ns)
    wait_for("2 pods", lambda: len(cluster.pods(ns)) == 2)
    cluster.kubectl("rollout", "pause", "deployment/paused", "-n", ns)
    wait_for("paused condition", lambda: any(
        c["reason"] == "DeploymentPaused" and c["status"] == "Unknown"
        for c in cluster.deployment(ns, "paused")["status"].get("conditions", [])))
    cluster.kubectl("set", "image", "deployment/paused", "*=img:2", "-n", ns)
    cluster.kubectl("scale", "deployment/paused", "--replicas=3", "-n", ns)
    wait_for("3 pods while paused", lambda: len(cluster.pods(ns)) == 3)
    d = wait_for("generation observed", lambda: (d := cluster.deployment(ns, "paused"))["status"].get(
        "observedGeneration") == d["metadata"]["generation"] and d)
    assert len(cluster.rss(ns)) == 1, "no rollout while paused"
    assert d["status"]["replicas"] == 3 or len(cluster.pods(ns)) == 3
    cluster.kubectl("rollout", "resume", "deployment/paused", "-n", ns)
    wait_for("new replica set", lambda: new_and_old(cluster, ns, "img:2")[0] > 0)


def test_progress_deadline_exceeded_fails_rollout_status(cluster: Cluster, ns: str) -> None:
    yaml = deployment_yaml("stuck", replicas=1, extra="  progressDeadlineSeconds: 2\n")
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml)
    started = time.monotonic()
    result = cluster.kubectl("rollout", "status", "deployment/stuck", "-n", ns, "--timeout=30s", check=False)
    assert result.returncode != 0
    assert 'error: deployment "stuck" exceeded its progress deadline' in result.stderr
    assert time.monotonic() - started < 10
    d = cluster.deployment(ns, "stuck")
    cond = [c for c in d["status"]["conditions"] if c["type"] == "Progressing"][0]
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    rs_name = cluster.rss(ns)[0]["metadata"]["name"]
    assert cond["message"] == f'ReplicaSet "{rs_name}" has timed out progressing.'


def test_scaling_mid_rollout_is_proportional(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=deployment_yaml("prop", strategy=rolling(1, 0)))
    wait_for("3 pods", lambda: len(cluster.pods(ns)) == 3)
    ready_all(cluster, ns)
    wait_for("available", lambda: cluster.deployment(ns, "prop")["status"].get("availableReplicas") == 3)
    cluster.kubectl("set", "image", "deployment/prop", "app=img:2", "-n", ns)
    wait_for("surge step", lambda: new_and_old(cluster, ns, "img:2") == (1, 3))
    cluster.kubectl("scale", "deployment/prop", "--replicas=6", "-n", ns)
    # 7 allowed (6 + surge 1), 3 more spread by size against max-replicas 4: old 3*7/4 -> 5, new 1*7/4 -> 2
    wait_for("proportional", lambda: new_and_old(cluster, ns, "img:2") == (2, 5))


def test_recreate_scales_old_down_before_creating_new(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-",
                    input=deployment_yaml("rec", replicas=2, strategy="  strategy: {type: Recreate}\n"))
    wait_for("2 pods", lambda: len(cluster.pods(ns)) == 2)
    ready_all(cluster, ns)
    old_pods = {p["metadata"]["name"] for p in cluster.pods(ns)}
    cluster.kubectl("set", "image", "deployment/rec", "app=img:2", "-n", ns)
    wait_for("new replica set", lambda: any(rs["spec"]["template"]["spec"]["containers"][0]["image"] == "img:2"
                                            for rs in cluster.rss(ns)))
    assert new_and_old(cluster, ns, "img:2")[1] == 0
    assert not old_pods & {p["metadata"]["name"] for p in cluster.pods(ns)}, "old pods gone before the new RS"
    wait_for("new pods", lambda: new_and_old(cluster, ns, "img:2") == (2, 0) and len(cluster.pods(ns)) == 2)
    events = wait_for("events", lambda: (out := cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector", "reason=ScalingReplicaSet", "-o", "json").stdout)
        and len(json.loads(out)["items"]) >= 3 and json.loads(out)["items"])
    # one recorder writes them in order; timestamps have whole seconds, resourceVersions do not tie
    messages = [e["message"] for e in sorted(events, key=lambda e: int(e["metadata"]["resourceVersion"]))]
    down = next(i for i, m in enumerate(messages) if m.startswith("Scaled down"))
    up = [i for i, m in enumerate(messages) if "from 0 to 2" in m]
    assert down < up[-1], messages


def test_revision_history_limit_deletes_old_empty_replica_sets(cluster: Cluster, ns: str) -> None:
    yaml = deployment_yaml("hist", replicas=0, extra="  revisionHistoryLimit: 1\n")
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml)
    for image in ("img:2", "img:3", "img:4"):
        cluster.kubectl("set", "image", "deployment/hist", f"app={image}", "-n", ns)
        wait_for(f"rs for {image}", lambda image=image: any(
            rs["spec"]["template"]["spec"]["containers"][0]["image"] == image for rs in cluster.rss(ns)))
    remaining = wait_for("history trimmed", lambda: (r := cluster.rss(ns)) and len(r) == 2 and r)
    assert sorted(revision_of(rs) for rs in remaining) == ["3", "4"]


def test_deployment_adopts_a_matching_orphan_replica_set(cluster: Cluster, ns: str) -> None:
    orphan = """\
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: handmade, labels: {app: adopt}}
spec:
  replicas: 1
  selector: {matchLabels: {app: adopt, pod-template-hash: manual}}
  template:
    metadata: {labels: {app: adopt, pod-template-hash: manual}}
    spec:
      containers: [{name: app, image: "img:1"}]
"""
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=orphan)
    wait_for("orphan's pod", lambda: len(cluster.pods(ns)) == 1)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=deployment_yaml("adopt", replicas=2))
    rs = wait_for("adopted and scaled", lambda: (rs := cluster.api("get", REPLICASETS, "handmade", ns))
                  and owner_name(rs) == "adopt" and rs["spec"]["replicas"] == 2 and rs)
    assert revision_of(rs) == "1"
    assert [r["metadata"]["name"] for r in cluster.rss(ns)] == ["handmade"], "its template is the deployment's"
    wait_for("2 pods", lambda: len(cluster.pods(ns)) == 2)


def test_hash_collision_bumps_collision_count_and_picks_another_name(cluster: Cluster, ns: str) -> None:
    from kubelite.controllers.deployment.util import compute_hash

    cluster.kubectl("apply", "-n", ns, "-f", "-", input=deployment_yaml("coll", replicas=0))
    wait_for("first rs", lambda: len(cluster.rss(ns)) == 1)
    template = cluster.deployment(ns, "coll")["spec"]["template"]
    template["spec"]["containers"][0]["image"] = "img:2"
    taken = f"coll-{compute_hash(template)}"
    decoy = replica_set_yaml("decoy", 0).replace("name: decoy", f"name: {taken}")
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=decoy)
    cluster.kubectl("set", "image", "deployment/coll", "app=img:2", "-n", ns)
    d = wait_for("collision counted", lambda: (d := cluster.deployment(ns, "coll"))["status"].get(
        "collisionCount") == 1 and d)
    new = wait_for("rs under another name", lambda: [
        rs for rs in cluster.rss(ns) if rs["spec"]["template"]["spec"]["containers"][0]["image"] == "img:2"
        and owner_name(rs) == "coll"])
    assert new[0]["metadata"]["name"] == f"coll-{compute_hash(template, 1)}"
    assert owner_name(cluster.api("get", REPLICASETS, taken, ns)) is None
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] in ("1", "2")

"""Kubelet semantics end to end: a real server (node IPAM) and one in-process kubelet whose fake
runtime is scripted per container (exits, probe results, hooks, slow stops). The kubelet runs
with time_scale 0.01, so upstream's 10 s back-off is 0.1 s here while its messages keep saying
"back-off 10s".

Covered: CrashLoopBackOff with growing delays, a failing liveness probe restarting a container,
readiness gating Ready, init containers first (and a failing one under restartPolicy Never),
restartPolicy Never pods ending Succeeded/Failed, CreateContainerConfigError for a missing
ConfigMap key (then starting once the key exists), image pull policy against a local image store,
env and volumes handed to the runtime, graceful deletion with a preStop hook, and an agent
restart that adopts running pods (restart counts, IDs, readiness unchanged) and removes the pods
deleted meanwhile.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.config import KubeletConfig, NodeConfig
from kubelite.agent.host import KubeletHost
from kubelite.agent.kubelet import Kubelet
from kubelite.agent.runtime.fake import Behaviour, FakeRuntime
from kubelite.client import Client, Connection
from kubelite.client.resources import CONFIGMAPS, EVENTS, NAMESPACES, NODES, PODS
from kubelite.images.api import ImageNotFound, ImageRecord
from tests import support
from tests.integration.conftest import ServerThread

Obj = dict[str, Any]
NODE = "semantics-0"
TIMEOUT = 20.0
SCALE = 0.01


wait_for = partial(support.wait_for, timeout=TIMEOUT, interval=0.02)


class Images:
    """A local image store holding a few references (ImageStoreAPI)."""

    present = {"busybox:1.36", "docker.io/library/busybox:1.36"}

    def get(self, reference: str) -> ImageRecord:
        if reference not in self.present:
            raise ImageNotFound(reference)
        return ImageRecord("docker.io/library/busybox:1.36", "sha256:c", "sha256:m", {}, (), 1)

    def list(self) -> list[ImageRecord]:
        return []


class Cluster:
    def __init__(self, server: ServerThread, root: Path) -> None:
        self.server = server
        self.root = root
        self.client = Client(Connection.from_kubeconfig(server.kubeconfig), user_agent="kubelet/semantics-test")
        self.config = KubeletConfig(renew_interval=1.0, time_scale=SCALE, root_dir=str(root))
        self.runtime = FakeRuntime(NODE)
        self.runtime.history = []
        self.host = self.new_host()

    def new_host(self) -> KubeletHost:
        self.kubelet = Kubelet(self.client, NodeConfig(name=NODE, internal_ip="127.0.0.1"), self.runtime,
                               config=self.config, images=Images())
        return KubeletHost(self.client, [self.kubelet], config=self.config,
                           pod_field_selector=f"spec.nodeName={NODE}")

    def api(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.server.call(getattr(self.client, method)(*args, **kwargs))

    def run(self, ns: str, name: str, *containers: Obj, **spec: Any) -> Obj:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
               "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 5,
                        "containers": list(containers) or [container()], **spec}}
        return dict(self.api("create", PODS, pod, ns))

    def pod(self, ns: str, name: str) -> Obj:
        return dict(self.api("get", PODS, name, ns))

    def status(self, ns: str, name: str, container: str = "app", *, init: bool = False) -> Obj:
        key = "initContainerStatuses" if init else "containerStatuses"
        statuses = self.pod(ns, name).get("status", {}).get(key) or []
        return next((s for s in statuses if s["name"] == container), {})

    def condition(self, ns: str, name: str, kind: str) -> str:
        conds = self.pod(ns, name).get("status", {}).get("conditions") or []
        return next((c["status"] for c in conds if c["type"] == kind), "")

    def phase(self, ns: str, name: str) -> str:
        return str(self.pod(ns, name).get("status", {}).get("phase"))

    def events(self, ns: str, name: str) -> list[tuple[str, str]]:
        items = self.api("list", EVENTS, ns)["items"]
        return [(e["reason"], e["message"]) for e in items if e["involvedObject"].get("name") == name]

    def history(self, uid: str, name: str = "app") -> list[tuple[float, str]]:
        assert self.runtime.history is not None
        return [(t, what) for t, what, u, n in list(self.runtime.history) if u == uid and n == name]

    def starts(self, uid: str, name: str = "app") -> list[float]:
        return [t for t, what in self.history(uid, name) if what == "start"]


def container(name: str = "app", **fields: Any) -> Obj:
    return {"name": name, "image": "busybox:1.36", **fields}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    server = ServerThread(tmp_path_factory.mktemp("semantics"), controllers="nodeipam", scheduler=False).start()
    cluster = Cluster(server, tmp_path_factory.mktemp("kubelet-root"))
    try:
        server.call(cluster.host.start())
        wait_for(lambda: cluster.api("get", NODES, NODE)["spec"].get("podCIDR"), what="a podCIDR")
        yield cluster
    finally:
        server.call(cluster.host.stop())
        for uid in list(cluster.runtime.pods):
            server.call(cluster.runtime.remove_sandbox(uid))
        server.call(cluster.client.close())
        server.stop()


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = f"k-{uuid.uuid4().hex[:8]}"
    cluster.api("create", NAMESPACES, {"metadata": {"name": name}})
    return name


def test_crashing_container_backs_off_with_growing_delays(cluster: Cluster, ns: str) -> None:
    cluster.runtime.script("app", Behaviour(exit_after=0.02, exit_code=1), pod="crasher")
    uid = cluster.run(ns, "crasher")["metadata"]["uid"]
    wait_for(lambda: len(cluster.starts(uid)) >= 5, what="five starts")
    starts = cluster.starts(uid)
    gaps = [b - a - 0.02 for a, b in zip(starts, starts[1:], strict=False)]
    # restart at once, then 10 s, 20 s, 40 s (scaled by 0.01): each wait about doubles
    assert gaps[0] < 0.08 and 0.08 < gaps[1] < 0.2 and 0.18 < gaps[2] < 0.35 and 0.38 < gaps[3] < 0.6, gaps

    def crashlooping() -> Obj | None:
        status = cluster.status(ns, "crasher")
        waiting = status.get("state", {}).get("waiting") or {}
        return status if waiting.get("reason") == "CrashLoopBackOff" and status["restartCount"] >= 4 else None

    status = wait_for(crashlooping, what="CrashLoopBackOff after four restarts")
    message = status["state"]["waiting"]["message"]
    assert message.startswith("back-off ") and message.endswith(f"restarting failed container=app pod=crasher_{ns}({uid})")
    assert status["lastState"]["terminated"]["exitCode"] == 1 and status["lastState"]["terminated"]["reason"] == "Error"
    assert cluster.phase(ns, "crasher") == "Running" and cluster.condition(ns, "crasher", "Ready") == "False"
    wait_for(lambda: ("BackOff", f"Back-off restarting failed container app in pod crasher_{ns}({uid})")
             in cluster.events(ns, "crasher"), what="a BackOff event")


def test_failing_liveness_probe_restarts_the_container(cluster: Cluster, ns: str) -> None:
    cluster.runtime.script("app", Behaviour(liveness=[True, False]), Behaviour(), pod="unhealthy")
    probe = {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 2, "failureThreshold": 1}
    uid = cluster.run(ns, "unhealthy", container(livenessProbe=probe))["metadata"]["uid"]
    status = wait_for(lambda: (s := cluster.status(ns, "unhealthy")).get("restartCount") == 1
                      and "running" in s["state"] and s, what="restartCount 1, running again")
    assert status["lastState"]["terminated"]["reason"] in ("Completed", "Error")
    events = wait_for(lambda: (e := cluster.events(ns, "unhealthy")) and
                      ("Killing", "Container app failed liveness probe, will be restarted") in e and e,
                      what="the Killing event")
    assert ("Unhealthy", "Liveness probe failed: scripted liveness failure") in events
    time.sleep(0.2)  # the new instance passes its probes: no more restarts
    assert cluster.status(ns, "unhealthy")["restartCount"] == 1 and len(cluster.starts(uid)) == 2


def test_readiness_gates_ready(cluster: Cluster, ns: str) -> None:
    cluster.runtime.script("app", Behaviour(readiness=[False] * 15 + [True]), pod="gated")
    probe = {"httpGet": {"port": 80, "path": "/ready"}, "periodSeconds": 2}
    cluster.run(ns, "gated", container(readinessProbe=probe))
    wait_for(lambda: cluster.phase(ns, "gated") == "Running", what="Running")
    assert cluster.condition(ns, "gated", "Ready") == "False"
    assert cluster.condition(ns, "gated", "ContainersReady") == "False"
    assert cluster.status(ns, "gated")["ready"] is False
    wait_for(lambda: cluster.condition(ns, "gated", "Ready") == "True", what="Ready")
    assert cluster.status(ns, "gated")["ready"] is True and cluster.status(ns, "gated")["started"] is True


def test_init_container_runs_first(cluster: Cluster, ns: str) -> None:
    cluster.runtime.script("setup", Behaviour(exit_after=0.3), pod="initd")
    uid = cluster.run(ns, "initd", initContainers=[container("setup")])["metadata"]["uid"]
    wait_for(lambda: "running" in cluster.status(ns, "initd", "setup", init=True).get("state", {}),
             what="the init container running")
    assert cluster.phase(ns, "initd") == "Pending"
    assert cluster.status(ns, "initd")["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert cluster.condition(ns, "initd", "Initialized") == "False"
    wait_for(lambda: cluster.phase(ns, "initd") == "Running", what="Running")
    setup_exit = next(t for t, what in cluster.history(uid, "setup") if what == "exit")
    assert cluster.starts(uid, "app")[0] >= setup_exit
    init = cluster.status(ns, "initd", "setup", init=True)
    assert init["state"]["terminated"]["reason"] == "Completed" and init["ready"] is True
    assert cluster.condition(ns, "initd", "Initialized") == "True"


def test_failing_init_container_under_never_fails_the_pod(cluster: Cluster, ns: str) -> None:
    cluster.runtime.script("setup", Behaviour(exit_code=2), pod="badinit")
    uid = cluster.run(ns, "badinit", initContainers=[container("setup")], restartPolicy="Never")["metadata"]["uid"]
    wait_for(lambda: cluster.phase(ns, "badinit") == "Failed", what="Failed")
    assert cluster.status(ns, "badinit", "setup", init=True)["state"]["terminated"]["exitCode"] == 2
    assert cluster.starts(uid, "app") == []
    wait_for(lambda: cluster.runtime.pod_status(uid) is None, what="the sandbox removed")


@pytest.mark.parametrize(("code", "phase", "reason"), [(0, "Succeeded", "Completed"), (2, "Failed", "Error")])
def test_restart_policy_never_ends_the_pod(cluster: Cluster, ns: str, code: int, phase: str, reason: str) -> None:
    cluster.runtime.script("app", Behaviour(exit_after=0.05, exit_code=code), pod=f"once-{code}")
    uid = cluster.run(ns, f"once-{code}", restartPolicy="Never")["metadata"]["uid"]
    wait_for(lambda: cluster.phase(ns, f"once-{code}") == phase, what=phase)
    terminated = cluster.status(ns, f"once-{code}")["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (code, reason)
    assert cluster.status(ns, f"once-{code}")["restartCount"] == 0
    wait_for(lambda: cluster.runtime.pod_status(uid) is None, what="the sandbox removed")
    assert cluster.condition(ns, f"once-{code}", "Ready") == "False"


def test_missing_config_map_key_is_a_config_error_until_it_exists(cluster: Cluster, ns: str) -> None:
    cluster.api("create", CONFIGMAPS, {"metadata": {"name": "cfg"}, "data": {"present": "yes"}}, ns)
    env = [{"name": "VALUE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "missing"}}}]
    uid = cluster.run(ns, "config", container(env=env))["metadata"]["uid"]
    waiting = wait_for(lambda: cluster.status(ns, "config").get("state", {}).get("waiting", {}).get("reason")
                       == "CreateContainerConfigError" and cluster.status(ns, "config")["state"]["waiting"],
                       what="CreateContainerConfigError")
    assert waiting["message"] == f"couldn't find key missing in ConfigMap {ns}/cfg"
    assert cluster.phase(ns, "config") == "Pending"
    cluster.api("patch", CONFIGMAPS, "cfg", {"data": {"missing": "found"}}, ns)
    wait_for(lambda: cluster.phase(ns, "config") == "Running", what="Running once the key exists")
    assert cluster.runtime.configs[(uid, "app")][0] == [("VALUE", "found")]


def test_image_pull_policy_against_the_local_store(cluster: Cluster, ns: str) -> None:
    cluster.run(ns, "never", container(image="absent:1", imagePullPolicy="Never"))
    cluster.run(ns, "pull", container(image="absent:1", imagePullPolicy="IfNotPresent"))
    waiting = wait_for(lambda: cluster.status(ns, "never").get("state", {}).get("waiting"), what="waiting")
    assert waiting == {"reason": "ErrImageNeverPull",
                       "message": 'Container image "absent:1" is not present with pull policy of Never'}
    reasons: set[str] = set()

    def both() -> bool:
        reasons.add(cluster.status(ns, "pull").get("state", {}).get("waiting", {}).get("reason", ""))
        return {"ErrImagePull", "ImagePullBackOff"} <= reasons

    wait_for(both, what="ErrImagePull, then ImagePullBackOff")
    message = cluster.status(ns, "pull")["state"]["waiting"]["message"]
    assert 'image "absent:1" is not present locally' in message
    expected = {("Failed", "Error: ErrImagePull"), ("Failed", "Error: ImagePullBackOff"),
                ("BackOff", 'Back-off pulling image "absent:1"'), ("Pulling", 'Pulling image "absent:1"')}
    wait_for(lambda: expected <= set(cluster.events(ns, "pull")), what="the pull events")
    wait_for(lambda: ("ErrImageNeverPull", 'Container image "absent:1" is not present with pull policy of Never')
             in cluster.events(ns, "never"), what="the ErrImageNeverPull event")


def test_env_and_volumes_reach_the_runtime(cluster: Cluster, ns: str) -> None:
    cluster.api("create", CONFIGMAPS, {"metadata": {"name": "site"}, "data": {"index.html": "hello"}}, ns)
    spec = container(env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                          {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                          {"name": "GREETING", "value": "hi $(POD)"}],
                     volumeMounts=[{"name": "data", "mountPath": "/data"}, {"name": "site", "mountPath": "/www"},
                                   {"name": "info", "mountPath": "/info"}])
    volumes = [{"name": "data", "emptyDir": {}}, {"name": "site", "configMap": {"name": "site"}},
               {"name": "info", "downwardAPI": {"items": [{"path": "name",
                                                           "fieldRef": {"fieldPath": "metadata.name"}}]}}]
    pod = cluster.run(ns, "envvol", spec, volumes=volumes)
    uid = pod["metadata"]["uid"]
    wait_for(lambda: cluster.phase(ns, "envvol") == "Running", what="Running")
    env, mounts = cluster.runtime.configs[(uid, "app")]
    ip = cluster.pod(ns, "envvol")["status"]["podIP"]
    assert env == [("POD", "envvol"), ("IP", ip), ("GREETING", "hi envvol")]
    by_path = {m.container_path: m for m in mounts}
    assert Path(by_path["/www"].host_path, "index.html").read_text() == "hello" and by_path["/www"].read_only
    assert Path(by_path["/info"].host_path, "name").read_text() == "envvol"
    assert Path(by_path["/data"].host_path).is_dir() and not by_path["/data"].read_only
    assert by_path["/data"].host_path.startswith(str(cluster.root / "pods" / uid))
    cluster.api("delete", PODS, "envvol", ns)
    wait_for(lambda: not (cluster.root / "pods" / uid).exists(), what="the pod's volumes removed")


def test_graceful_deletion_runs_the_pre_stop_hook_first(cluster: Cluster, ns: str) -> None:
    cluster.runtime.script("app", Behaviour(pre_stop_delay=0.3, stop_delay=0.2), pod="graceful")
    hook = {"preStop": {"exec": {"command": ["sh", "-c", "sleep 1"]}}}
    uid = cluster.run(ns, "graceful", container(lifecycle=hook))["metadata"]["uid"]
    wait_for(lambda: cluster.phase(ns, "graceful") == "Running", what="Running")
    began = time.monotonic()
    cluster.api("delete", PODS, "graceful", ns)
    assert cluster.pod(ns, "graceful")["metadata"].get("deletionTimestamp")  # waits for the kubelet

    def gone() -> bool:
        try:
            cluster.pod(ns, "graceful")
        except Exception:
            return True
        return False

    wait_for(gone, what="the pod deleted by its kubelet")
    assert time.monotonic() - began >= 0.5
    steps = [what for _, what in cluster.history(uid)]
    assert steps[-3:] == ["preStop", "stop", "stopped"]
    assert cluster.runtime.pod_status(uid) is None
    assert ("Killing", "Stopping container app") in cluster.events(ns, "graceful")


def test_agent_restart_adopts_running_pods(cluster: Cluster, ns: str) -> None:
    """Runs last in this module: it replaces the kubelet."""
    cluster.runtime.script("app", Behaviour(exit_after=0.05, exit_code=1), Behaviour(), pod="restarted")
    probe = {"exec": {"command": ["true"]}, "periodSeconds": 1}
    steady = cluster.run(ns, "steady", container(readinessProbe=probe))
    restarted = cluster.run(ns, "restarted")
    doomed = cluster.run(ns, "doomed")
    wait_for(lambda: cluster.condition(ns, "steady", "Ready") == "True", what="steady Ready")
    wait_for(lambda: (s := cluster.status(ns, "restarted")).get("restartCount") == 1 and "running" in s["state"],
             what="restarted running again")
    wait_for(lambda: cluster.phase(ns, "doomed") == "Running", what="doomed Running")
    before = {name: cluster.status(ns, name) for name in ("steady", "restarted")}
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in (steady, restarted, doomed)}
    starts_before = {name: len(cluster.starts(uid)) for name, uid in uids.items()}

    cluster.server.call(cluster.host.stop())  # the agent goes away; its containers keep running
    cluster.api("delete", PODS, "doomed", ns, grace_period=0)  # deleted (forced) while it is away
    cluster.host = cluster.new_host()
    cluster.server.call(cluster.host.start())

    wait_for(lambda: cluster.runtime.pod_status(uids["doomed"]) is None, what="the orphan removed")
    time.sleep(0.3)  # let the new kubelet sync and probe
    for name in ("steady", "restarted"):
        after = cluster.status(ns, name)
        assert after["containerID"] == before[name]["containerID"]
        assert after["restartCount"] == before[name]["restartCount"]
        assert after["lastState"] == before[name]["lastState"]
        assert after["ready"] is True and cluster.condition(ns, name, "Ready") == "True"
        assert len(cluster.starts(uids[name])) == starts_before[name]  # nothing restarted

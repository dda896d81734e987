"""The kubelet over the real runc runtime, as root: an in-process API server and one in-process
kubelet whose pods are runc containers on a busybox rootfs (bridge klks0, 198.18.244.0/24, netns
prefix and cgroup parent klks). Probes exec into real containers and GET real HTTP servers, exit
codes and OOM kills are real, volumes are real directories and tmpfs mounts, the preStop hook
runs inside the container, and a new kubelet on a new runtime adopts the running pods.

At the end the module checks that nothing is left on the host (processes, mounts, netns, veths,
IP allocations, runc state, cgroups) and that the kubelet's volume directories are gone.
"""

from __future__ import annotations

import asyncio
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
from kubelite.agent.runtime.runc import RuncRuntime
from kubelite.client import Client, Connection
from kubelite.client.resources import CONFIGMAPS, NAMESPACES, NODES, PODS, SERVICES
from kubelite.objects.errors import NotFound
from tests import support
from tests.e2e.runc_fixtures import (
    StubImages,
    assert_clean,
    build_rootfs,
    delete_bridge,
    require_host,
    runc_config,
)
from tests.integration.conftest import ServerThread

pytestmark = [pytest.mark.e2e]

Obj = dict[str, Any]
NODE = "klks-node"
SUBNET = "198.18.244.0/24"
BRIDGE = "klks0"
SLEEP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


wait_for = partial(support.wait_for, timeout=30.0, interval=0.05)


class Node:
    def __init__(self, server: ServerThread, tmp: Path) -> None:
        self.server, self.tmp = server, tmp
        self.images = StubImages(build_rootfs(tmp / "rootfs"))
        self.config = runc_config(tmp / "runtime", bridge=BRIDGE, network="klks", prefix="klks")
        self.root = tmp / "kubelet"
        self.client = Client(Connection.from_kubeconfig(server.kubeconfig), user_agent="kubelet/klks")
        self.start()

    def start(self) -> None:
        """A kubelet on a new runtime object over the same state (what an agent restart is)."""
        self.runtime = RuncRuntime(self.config, self.images)
        config = KubeletConfig(renew_interval=1.0, root_dir=str(self.root))
        kubelet = Kubelet(self.client, NodeConfig(name=NODE, internal_ip="127.0.0.1"), self.runtime,
                          config=config, images=self.images)
        self.host = KubeletHost(self.client, [kubelet], config=config, pod_field_selector=f"spec.nodeName={NODE}")
        self.server.call(self.host.start())

    def stop(self) -> None:
        self.server.call(self.host.stop())
        self.server.call(self.runtime.close())

    def api(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.server.call(getattr(self.client, method)(*args, **kwargs))

    def run(self, ns: str, name: str, *containers: Obj, **spec: Any) -> str:
        pod = {"metadata": {"name": name, "namespace": ns},
               "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 2, "containers": list(containers),
                        **spec}}
        return str(self.api("create", PODS, pod, ns)["metadata"]["uid"])

    def pod(self, ns: str, name: str) -> Obj | None:
        try:
            return dict(self.api("get", PODS, name, ns))
        except NotFound:
            return None

    def status(self, ns: str, name: str, container: str = "c") -> Obj:
        statuses = ((self.pod(ns, name) or {}).get("status") or {}).get("containerStatuses") or []
        return next((s for s in statuses if s["name"] == container), {})

    def condition(self, ns: str, name: str, kind: str) -> str:
        conditions = ((self.pod(ns, name) or {}).get("status") or {}).get("conditions") or []
        return next((c["status"] for c in conditions if c["type"] == kind), "")

    def wait_running(self, ns: str, name: str) -> None:
        wait_for(lambda: ((self.pod(ns, name) or {}).get("status") or {}).get("phase") == "Running",
                 what=f"{name} Running")

    def exec(self, uid: str, container: str, script: str) -> tuple[int, str]:
        async def run() -> tuple[int, str]:
            session = await self.runtime.exec(uid, container, ["sh", "-c", script], tty=False, stdin=False)
            assert session.stdout is not None and session.stderr is not None
            out, err = await asyncio.gather(session.stdout.read(), session.stderr.read())
            code = await session.wait()
            await session.close()
            return code, (out + err).decode()
        return tuple(self.server.call(run()))  # type: ignore[return-value]

    def delete(self, ns: str, name: str) -> None:
        self.api("delete", PODS, name, ns)
        wait_for(lambda: self.pod(ns, name) is None, what=f"{name} deleted by its kubelet")


def container(name: str = "c", command: list[str] | None = None, **fields: Any) -> Obj:
    return {"name": name, "image": "busybox", "command": command or SLEEP, **fields}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    require_host()
    server = ServerThread(tmp_path_factory.mktemp("klks-server"), controllers="", scheduler=False).start()
    node = None
    try:
        node = Node(server, tmp_path_factory.mktemp("klks"))
        node.api("patch", NODES, NODE, {"spec": {"podCIDR": SUBNET, "podCIDRs": [SUBNET]}})
        wait_for(lambda: node is not None and node.runtime.subnet == SUBNET, what="the podCIDR at the runtime")
        yield node
    finally:
        if node is not None:
            node.server.call(node.host.stop())
            for uid in node.runtime.pod_uids():
                node.server.call(node.runtime.remove_sandbox(uid))
            node.server.call(node.runtime.close())
            server.call(node.client.close())
        server.stop()
        try:
            if node is not None:
                asyncio.run(assert_clean(node.config))
                pods = node.root / "pods"
                assert not pods.exists() or not list(pods.iterdir()), list(pods.iterdir())
        finally:
            delete_bridge(BRIDGE)


@pytest.fixture
def ns(node: Node) -> str:
    name = f"klks-{uuid.uuid4().hex[:6]}"
    node.api("create", NAMESPACES, {"metadata": {"name": name}})
    return name


def test_crashing_container_reports_its_exit_and_backs_off(node: Node, ns: str) -> None:
    node.run(ns, "crash", container(command=["sh", "-c", "echo bye; exit 3"]))
    status = wait_for(lambda: (s := node.status(ns, "crash")).get("restartCount", 0) >= 1 and
                      (s.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff" and s,
                      what="CrashLoopBackOff after a restart")
    assert status["state"]["waiting"]["message"].startswith("back-off 10s restarting failed container=c pod=crash_")
    terminated = status["lastState"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert status["containerID"].startswith("runc://") and status["imageID"].startswith("docker.io/library/busybox@")
    node.delete(ns, "crash")


def test_a_process_that_cannot_start_is_a_run_container_error(node: Node, ns: str) -> None:
    node.run(ns, "nocmd", container(command=["/no/such/binary"]), restartPolicy="Never")
    status = wait_for(lambda: (s := node.status(ns, "nocmd")).get("state", {}).get("terminated") and s,
                      what="the container terminated")
    terminated = status["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("StartError", 128)
    wait_for(lambda: ((node.pod(ns, "nocmd") or {}).get("status") or {}).get("phase") == "Failed", what="Failed")
    node.api("delete", PODS, "nocmd", ns)


def test_liveness_exec_probe_kills_and_restarts(node: Node, ns: str) -> None:
    script = "touch /tmp/healthy; sleep 2; rm /tmp/healthy; while true; do sleep 1; done"
    probe = {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 1}
    node.run(ns, "live", container(command=["sh", "-c", script], livenessProbe=probe))
    status = wait_for(lambda: (s := node.status(ns, "live")).get("restartCount") == 1 and "running" in s["state"]
                      and s, what="restarted after the liveness probe failed")
    assert status["lastState"]["terminated"]["exitCode"] == 137  # sh as pid 1 ignores TERM: killed after 2 s
    node.delete(ns, "live")


def test_readiness_http_probe_gates_ready(node: Node, ns: str) -> None:
    probe = {"httpGet": {"path": "/ready.html", "port": "web"}, "periodSeconds": 1}
    uid = node.run(ns, "web", container(command=["httpd", "-f", "-p", "8080", "-h", "/www"], readinessProbe=probe,
                                        ports=[{"name": "web", "containerPort": 8080}]))
    node.wait_running(ns, "web")
    time.sleep(2.5)
    assert node.condition(ns, "web", "Ready") == "False" and node.status(ns, "web")["ready"] is False
    assert node.exec(uid, "c", "echo ok > /www/ready.html")[0] == 0
    wait_for(lambda: node.condition(ns, "web", "Ready") == "True", what="Ready")
    node.delete(ns, "web")


def test_env_and_volumes_inside_the_container(node: Node, ns: str) -> None:
    node.api("create", CONFIGMAPS, {"metadata": {"name": "cfg"}, "data": {"greeting": "hello", "key": "v1"}}, ns)
    mounts = [{"name": "cfg", "mountPath": "/cfg"}, {"name": "info", "mountPath": "/info"},
              {"name": "mem", "mountPath": "/mem"}, {"name": "shared", "mountPath": "/shared"}]
    env = [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
           {"name": "MESSAGE", "value": "$(GREETING) from $(POD_NAME)"},
           {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    writer = container("writer", ["sh", "-c", "echo shared-note > /shared/note; " + SLEEP[2]],
                       volumeMounts=[{"name": "shared", "mountPath": "/shared"}])
    volumes = [{"name": "cfg", "configMap": {"name": "cfg"}},
               {"name": "info", "downwardAPI": {"items": [{"path": "labels",
                                                           "fieldRef": {"fieldPath": "metadata.labels"}}]}},
               {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
               {"name": "shared", "emptyDir": {}}]
    uid = node.run(ns, "vols", container(env=env, volumeMounts=mounts), writer, volumes=volumes)
    node.wait_running(ns, "vols")
    code, out = node.exec(uid, "c", "cat /cfg/key; echo; cat /info/labels; echo; echo $MESSAGE; "
                                    "grep ' /mem ' /proc/mounts; echo $KUBERNETES_SERVICE_HOST; touch /cfg/x 2>&1")
    lines = out.splitlines()
    assert lines[4] == node.api("get", SERVICES, "kubernetes", "default")["spec"]["clusterIP"]
    assert lines[0] == "v1" and lines[2] == "hello from $(POD_NAME)"  # POD_NAME is defined after MESSAGE
    assert "tmpfs /mem tmpfs" in lines[3] and "size=8192k" in lines[3]
    wait_for(lambda: node.exec(uid, "c", "cat /shared/note")[1] == "shared-note\n", what="the writer's note")
    assert "Read-only file system" in lines[-1]
    node.delete(ns, "vols")
    assert not (node.root / "pods" / uid).exists()


def test_graceful_deletion_runs_the_pre_stop_hook_in_the_container(node: Node, ns: str, tmp_path: Path) -> None:
    hook = {"preStop": {"exec": {"command": ["sh", "-c", "echo stopping > /out/prestop; sleep 1"]}}}
    out = tmp_path / "out"
    node.run(ns, "bye", container(lifecycle=hook, volumeMounts=[{"name": "out", "mountPath": "/out"}]),
             volumes=[{"name": "out", "hostPath": {"path": str(out), "type": "DirectoryOrCreate"}}])
    node.wait_running(ns, "bye")
    began = time.monotonic()
    node.delete(ns, "bye")
    assert time.monotonic() - began >= 1.0
    assert (out / "prestop").read_text() == "stopping\n"


def test_over_its_memory_limit_a_container_is_oomkilled(node: Node, ns: str) -> None:
    hog = container(command=["sh", "-c", "x=0123456789abcdef; while true; do x=$x$x; done"],
                    resources={"limits": {"memory": "32Mi"}})
    uid = node.run(ns, "hog", hog, restartPolicy="Never")
    wait_for(lambda: ((node.pod(ns, "hog") or {}).get("status") or {}).get("phase") == "Failed", what="Failed")
    terminated = node.status(ns, "hog")["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137)
    wait_for(lambda: node.runtime.pod_status(uid) is None, what="the finished pod's sandbox removed")
    node.api("delete", PODS, "hog", ns)


def test_a_new_kubelet_adopts_running_pods(node: Node, ns: str) -> None:
    """Last: it replaces the kubelet and the runtime object."""
    probe = {"exec": {"command": ["true"]}, "periodSeconds": 1}
    node.run(ns, "keep", container(readinessProbe=probe))
    wait_for(lambda: node.condition(ns, "keep", "Ready") == "True", what="Ready")
    before = node.status(ns, "keep")
    node.stop()
    node.start()
    time.sleep(2)
    after = node.status(ns, "keep")
    assert (after["containerID"], after["restartCount"], after["ready"]) == (before["containerID"], 0, True)
    assert node.condition(ns, "keep", "Ready") == "True"
    node.delete(ns, "keep")

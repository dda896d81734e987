"""The node agent end to end (issue 4's "Must show"), through the real kubectl: one `kubelite agent
--runtime runc` node (tests/e2e/conftest.py) whose pods are runc containers on this host.

Order matters where a test needs the node to itself: the create/delete cycles run first, the agent
restart last. Every other test cleans up its pods; the fixture's teardown checks that nothing at
all is left on the host.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import ipaddress
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from kubelite.client.resources import PODS
from kubelite.cluster.nodecreds import NODES_GROUP
from kubelite.images.testimages import BUSYBOX_REF, HTTPD_REF, INDEX_HTML
from kubelite.objects.errors import NotFound
from tests import support
from tests.e2e.conftest import TIMEOUT, NodeCluster, pod_ready, wait_for
from tests.integration.conftest import KUBECTL

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]
HTTPD = ["httpd", "-f", "-vv", "-p", "80", "-h", "/www"]
SLEEPER = ["sh", "-c", 'trap "exit 0" TERM; sleep 3600 & wait']  # PID 1 ignores TERM without a handler
CYCLES, LANES = 100, 10


def container(name: str, command: list[str], image: str = BUSYBOX_REF, **extra: Any) -> Obj:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", "command": command, **extra}


def pod_manifest(ns: str, name: str, *containers: Obj, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": list(containers), "terminationGracePeriodSeconds": 2, **spec}}


def status_of(pod: Obj, name: str) -> Obj:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status["name"] == name:
            return dict(status)
    return {}


def condition(pod: Obj, kind: str) -> str:
    return next((c["status"] for c in pod.get("status", {}).get("conditions") or [] if c["type"] == kind), "")


def curl(url: str, *, timeout: float = 5) -> str:
    result = subprocess.run(["curl", "-sS", "-m", str(timeout), "--retry", "10", "--retry-all-errors",
                             "--retry-delay", "0", url], capture_output=True, text=True, timeout=timeout * 12)
    assert result.returncode == 0, result.stderr
    return result.stdout




# ----- the node --------------------------------------------------------------------------------------

def test_node_registers_with_its_own_credentials(node_cluster: NodeCluster) -> None:
    obj = json.loads(node_cluster.kubectl("get", "node", node_cluster.spec.name, "-o", "json").stdout)
    status = obj["status"]
    assert {"type": "InternalIP", "address": node_cluster.spec.ip} in status["addresses"]
    assert status["nodeInfo"]["containerRuntimeVersion"].startswith("runc://1.")
    assert status["capacity"]["cpu"] == str(len(os.sched_getaffinity(0)))
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] > 0
    assert ipaddress.ip_network(obj["spec"]["podCIDR"]).subnet_of(
        ipaddress.ip_network(node_cluster.spec.cluster_cidr))  # type: ignore[arg-type]
    # the agent runs with the node's own certificate (the fixture gives it only this kubeconfig)
    config = yaml.safe_load(node_cluster.paths.kubeconfig.read_text())
    cert = x509.load_pem_x509_certificate(base64.b64decode(config["users"][0]["user"]["client-certificate-data"]))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"system:node:{node_cluster.spec.name}"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [NODES_GROUP]


# ----- create/delete cycles (first: the node is empty) ------------------------------------------------------

def test_create_delete_cycles_leave_nothing_behind(node_cluster: NodeCluster, node_ns: str) -> None:
    before = node_cluster.leftovers()

    async def cycle(lane: int, i: int) -> str:
        client = node_cluster.client
        assert client is not None
        name = f"cycle-{lane}-{i}"
        await client.create(PODS, pod_manifest(node_ns, name, container("c", SLEEPER)), node_ns)
        ip = ""
        while not ip:
            pod = await client.get(PODS, name, node_ns)
            ip = pod["status"].get("podIP", "") if pod.get("status", {}).get("phase") == "Running" else ""
            await asyncio.sleep(0.05)
        await client.delete(PODS, name, node_ns)
        while True:
            try:
                await client.get(PODS, name, node_ns)
            except NotFound:
                return ip
            await asyncio.sleep(0.05)

    async def lane(n: int) -> list[str]:
        return [await cycle(n, i) for i in range(CYCLES // LANES)]

    async def all_lanes() -> list[list[str]]:
        return await asyncio.gather(*(lane(n) for n in range(LANES)))

    ips = [ip for lane_ips in node_cluster.call(all_lanes(), timeout=600) for ip in lane_ips]
    assert len(ips) == CYCLES
    wait_for(lambda: node_cluster.leftovers() == before, timeout=15,
             what=f"the node to be as before the cycles (now: {node_cluster.leftovers()})")


# ----- a deployment of httpd ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def web(node_cluster: NodeCluster) -> Iterator[tuple[str, list[Obj]]]:
    """A 2-replica deployment of the httpd test image, rolled out; (namespace, its pods)."""
    ns = f"web-{uuid.uuid4().hex[:6]}"
    node_cluster.kubectl("create", "namespace", ns)
    template = {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [container("httpd", HTTPD, image=HTTPD_REF, ports=[{"containerPort": 80}])],
                         "terminationGracePeriodSeconds": 1}}
    node_cluster.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
                        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template}})
    node_cluster.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s", timeout=90)
    pods = node_cluster.api("list", PODS, ns, label_selector="app=web")["items"]
    yield ns, pods
    node_cluster.kubectl("delete", "deployment", "web", "-n", ns, "--wait=false", check=False)


def test_deployment_pods_are_reachable_from_the_host_and_each_other(node_cluster: NodeCluster,
                                                                    web: tuple[str, list[Obj]]) -> None:
    ns, pods = web
    cidr = ipaddress.ip_network(node_cluster.get_node()["spec"]["podCIDR"])  # type: ignore[index]
    assert len(pods) == 2
    for pod in pods:
        assert pod_ready(pod)
        assert ipaddress.ip_address(pod["status"]["podIP"]) in cidr
        assert pod["status"]["hostIP"] == node_cluster.spec.ip
        assert status_of(pod, "httpd")["containerID"].startswith("runc://")
        ip, name = pod["status"]["podIP"], pod["metadata"]["name"]
        assert curl(f"http://{ip}/") == INDEX_HTML
        assert curl(f"http://{ip}/cgi-bin/id").strip() == name  # the pod's hostname is its name
    a, b = pods
    request = f"printf 'GET /cgi-bin/id HTTP/1.0\\r\\n\\r\\n' | nc {b['status']['podIP']} 80"
    answer = node_cluster.kubectl("exec", a["metadata"]["name"], "-n", ns, "--", "sh", "-c", request).stdout
    assert "200 OK" in answer and answer.rstrip().endswith(b["metadata"]["name"])


def test_logs_follow_streams(node_cluster: NodeCluster, web: tuple[str, list[Obj]]) -> None:
    ns, pods = web
    pod = pods[0]
    proc = node_cluster.server.popen_kubectl("logs", "-f", pod["metadata"]["name"], "-n", ns)
    try:
        reader = support.LineReader(proc.stdout, timeout=TIMEOUT)
        for _ in range(3):
            marker = f"/follow-{uuid.uuid4().hex[:8]}"
            subprocess.run(["curl", "-s", "-m", "5", f"http://{pod['status']['podIP']}{marker}"], capture_output=True)
            reader.wait_for(re.escape(f"url:{marker}"), timeout=15)
        assert proc.poll() is None  # still following
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_exec_exit_code(node_cluster: NodeCluster, web: tuple[str, list[Obj]]) -> None:
    ns, pods = web
    result = node_cluster.kubectl("exec", pods[0]["metadata"]["name"], "-n", ns, "--", "sh", "-c", "exit 3",
                                  check=False)
    assert result.returncode == 3, result.stderr


def test_exec_it_gets_a_shell(node_cluster: NodeCluster, web: tuple[str, list[Obj]]) -> None:
    ns, pods = web
    name = pods[0]["metadata"]["name"]
    server = node_cluster.server
    args = [KUBECTL, f"--kubeconfig={server.kubeconfig}", f"--cache-dir={server.cache_dir}", "exec", "-it", name,
            "-n", ns, "--", "sh"]
    output, code = run_in_pty(args, typed=[b"test -t 0 && echo TTY-$((6*7))\r", b"hostname\r", b"exit 5\r"],
                              env={**os.environ, "HOME": str(server.config.data_dir)})
    assert "TTY-42" in output and name in output, output
    assert code == 5, output


def run_in_pty(args: list[str], *, typed: list[bytes], env: dict[str, str]) -> tuple[str, int]:
    """Run `args` on a terminal; type each line once the previous one's echo came back."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(args[0], args, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    output, pending, deadline = b"", list(typed), time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            if pending and (b"# " in output.rsplit(b"\n", 1)[-1] or b"$ " in output.rsplit(b"\n", 1)[-1]):
                os.write(fd, pending.pop(0))
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
    finally:
        os.close(fd)
        _, raw = os.waitpid(pid, 0)
    return output.decode(errors="replace"), os.waitstatus_to_exitcode(raw)


def test_port_forward_serves_a_request(node_cluster: NodeCluster, web: tuple[str, list[Obj]]) -> None:
    ns, pods = web
    proc = node_cluster.server.popen_kubectl("port-forward", f"pod/{pods[0]['metadata']['name']}", "-n", ns, "0:80")
    try:
        port = support.LineReader(proc.stdout, timeout=TIMEOUT).wait_for(r"Forwarding from 127\.0\.0\.1:(\d+) -> 80").group(1)
        assert curl(f"http://127.0.0.1:{port}/") == INDEX_HTML
        assert curl(f"http://127.0.0.1:{port}/cgi-bin/id").strip() == pods[0]["metadata"]["name"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ----- container lifecycle --------------------------------------------------------------------------------

def test_crashing_container_reaches_crashloopbackoff_with_growing_delays(node_cluster: NodeCluster,
                                                                         node_ns: str) -> None:
    node_cluster.apply(pod_manifest(node_ns, "crasher", container("c", ["sh", "-c", "echo crashing; exit 1"])))
    restarts: dict[int, float] = {}
    reasons: set[str] = set()

    def third_restart() -> bool:
        pod = node_cluster.pod(node_ns, "crasher") or {}
        status = status_of(pod, "c")
        restarts.setdefault(int(status.get("restartCount", 0)), time.monotonic())
        reasons.add(str((status.get("state", {}).get("waiting") or {}).get("reason", "")))
        return len([n for n in restarts if n > 0]) >= 3
    wait_for(third_restart, timeout=120, interval=0.1, what="three restarts of a crashing container")
    assert "CrashLoopBackOff" in reasons
    first, second = restarts[2] - restarts[1], restarts[3] - restarts[2]
    assert first >= 8 and second >= 1.5 * first, restarts  # 10 s, then 20 s (upstream's back-off)
    pod = node_cluster.pod(node_ns, "crasher") or {}
    assert status_of(pod, "c")["lastState"]["terminated"]["exitCode"] == 1
    assert "crashing" in node_cluster.kubectl("logs", "crasher", "-n", node_ns, "--previous").stdout
    node_cluster.kubectl("delete", "pod", "crasher", "-n", node_ns, "--wait=false")


def test_failing_liveness_probe_restarts_the_container(node_cluster: NodeCluster, node_ns: str) -> None:
    probe = {"httpGet": {"path": "/missing", "port": 80}, "periodSeconds": 1, "failureThreshold": 2}
    node_cluster.apply(pod_manifest(node_ns, "unhealthy", container("httpd", HTTPD, image=HTTPD_REF,
                                                                    livenessProbe=probe)))
    pod = node_cluster.wait_pod(node_ns, "unhealthy", lambda p: status_of(p, "httpd").get("restartCount", 0) >= 1,
                                what="a restart after failed liveness probes")
    assert "terminated" in status_of(pod, "httpd")["lastState"]
    events = node_cluster.kubectl("get", "events", "-n", node_ns, "--field-selector",
                                  "involvedObject.name=unhealthy", "-o", "jsonpath={.items[*].reason}").stdout
    assert "Unhealthy" in events.split()
    node_cluster.kubectl("delete", "pod", "unhealthy", "-n", node_ns, "--wait=false")


def test_readiness_probe_gates_ready(node_cluster: NodeCluster, node_ns: str) -> None:
    probe = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}
    node_cluster.apply(pod_manifest(node_ns, "gated", container("c", SLEEPER, readinessProbe=probe)))
    node_cluster.wait_pod(node_ns, "gated", lambda p: p.get("status", {}).get("phase") == "Running", what="Running")
    deadline = time.monotonic() + 3  # three probe periods: still not Ready
    while time.monotonic() < deadline:
        pod = node_cluster.pod(node_ns, "gated") or {}
        assert condition(pod, "Ready") == "False" and status_of(pod, "c").get("ready") is False, pod.get("status")
        time.sleep(0.2)
    node_cluster.kubectl("exec", "gated", "-n", node_ns, "--", "touch", "/tmp/ready")
    node_cluster.wait_pod(node_ns, "gated", lambda p: condition(p, "Ready") == "True", timeout=15, what="Ready")
    node_cluster.kubectl("exec", "gated", "-n", node_ns, "--", "rm", "/tmp/ready")
    node_cluster.wait_pod(node_ns, "gated", lambda p: condition(p, "Ready") == "False", timeout=15, what="not Ready")
    node_cluster.kubectl("delete", "pod", "gated", "-n", node_ns, "--wait=false")


def test_container_over_its_memory_limit_is_oomkilled(node_cluster: NodeCluster, node_ns: str) -> None:
    hog = container("hog", ["sh", "-c", "x=0123456789abcdef; while true; do x=$x$x; done"],
                    resources={"limits": {"memory": "32Mi"}, "requests": {"memory": "32Mi"}})
    node_cluster.apply(pod_manifest(node_ns, "hog", hog, restartPolicy="Never"))
    pod = node_cluster.wait_pod(node_ns, "hog", lambda p: "terminated" in status_of(p, "hog").get("state", {}),
                                what="the hog terminated")
    terminated = status_of(pod, "hog")["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137)
    node_cluster.wait_pod(node_ns, "hog", lambda p: p["status"]["phase"] == "Failed", what="phase Failed")
    node_cluster.kubectl("delete", "pod", "hog", "-n", node_ns, "--wait=false")


def test_two_containers_share_an_emptydir(node_cluster: NodeCluster, node_ns: str) -> None:
    mount = [{"name": "shared", "mountPath": "/shared"}]
    writer = container("writer", ["sh", "-c", 'echo "from $(hostname)" > /shared/note; ' + SLEEPER[2]],
                       volumeMounts=mount)
    reader = container("reader", SLEEPER, volumeMounts=mount)
    node_cluster.apply(pod_manifest(node_ns, "sharing", writer, reader, volumes=[{"name": "shared", "emptyDir": {}}]))
    node_cluster.wait_pod(node_ns, "sharing", pod_ready, what="Running and Ready")
    def read() -> str:
        return node_cluster.kubectl("exec", "sharing", "-c", "reader", "-n", node_ns, "--", "cat", "/shared/note",
                                    check=False).stdout

    assert wait_for(read, timeout=10, what="the writer's note") == "from sharing\n"
    node_cluster.kubectl("delete", "pod", "sharing", "-n", node_ns, "--wait=false")


# ----- agent restart (last: it restarts the agent) -------------------------------------------------------

def test_agent_restart_keeps_running_pods_and_their_status(node_cluster: NodeCluster, node_ns: str,
                                                           web: tuple[str, list[Obj]]) -> None:
    web_ns, _ = web
    node_cluster.apply(pod_manifest(node_ns, "doomed", container("c", SLEEPER)))
    node_cluster.apply(pod_manifest(node_ns, "exits", container("c", SLEEPER), restartPolicy="Never"))
    for name in ("doomed", "exits"):
        node_cluster.wait_pod(node_ns, name, pod_ready, what="Ready")
    before = {p["metadata"]["name"]: p for p in node_cluster.api("list", PODS, web_ns)["items"]}
    exits_cid = status_of(node_cluster.pod(node_ns, "exits") or {}, "c")["containerID"].split("://", 1)[1]
    doomed_uid = (node_cluster.pod(node_ns, "doomed") or {})["metadata"]["uid"]
    assert node_cluster.agent is not None
    node_cluster.agent.stop(signal.SIGKILL)  # a crash: nothing is shut down in order
    # while the agent is away: a pod is force-deleted, a container is killed
    node_cluster.kubectl("delete", "pod", "doomed", "-n", node_ns, "--grace-period=0", "--force")
    runc_root = str(node_cluster.paths.runtime / "runc")
    state = subprocess.run(["runc", "--root", runc_root, "state", exits_cid], capture_output=True, text=True)
    os.kill(int(json.loads(state.stdout)["pid"]), signal.SIGTERM)
    node_cluster.start_agent()
    for name, old in before.items():
        pod = node_cluster.wait_pod(web_ns, name, pod_ready, timeout=20, what="still Running and Ready")
        assert status_of(pod, "httpd")["containerID"] == status_of(old, "httpd")["containerID"]
        assert status_of(pod, "httpd")["restartCount"] == status_of(old, "httpd")["restartCount"]
        assert curl(f"http://{pod['status']['podIP']}/cgi-bin/id").strip() == name
    pod = node_cluster.wait_pod(node_ns, "exits", lambda p: "terminated" in status_of(p, "c").get("state", {}),
                                what="the container killed while the agent was away reported terminated")
    assert status_of(pod, "c")["state"]["terminated"]["exitCode"] == 0  # its TERM trap exits 0
    wait_for(lambda: f"{doomed_uid}.json" not in node_cluster.sandboxes(), timeout=20,
             what="the sandbox of the pod deleted while the agent was away removed")
    node_cluster.kubectl("delete", "pod", "exits", "-n", node_ns, "--wait=false")

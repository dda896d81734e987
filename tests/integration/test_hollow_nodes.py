"""Hollow nodes end to end: three fake-runtime kubelets in-process against a real server running
the node IPAM and node lifecycle controllers (plus the scheduler and the ReplicaSet/Deployment
controllers when they are in the tree), checked with the real kubectl.

The story: nodes register and turn Ready with a podCIDR each; pods bound to them run with
addresses from that podCIDR; a graceful delete completes because the kubelet finishes it; then
one node's kubelet dies (heartbeats stop) with a 3 s node-monitor grace period, the node goes
Unknown with the unreachable taints, pods tolerating that for 2 s are evicted (and, with the
workload controllers, replaced on the live nodes) while pods with the default 300 s toleration
stay; finally the kubelet comes back, the node is Ready and untainted again, and it finishes the
evicted pods off.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from kubelite.agent.config import KubeletConfig
from kubelite.agent.hollow import HollowNodes
from kubelite.client import Client, Connection
from kubelite.client.resources import EVENTS, NODES, PODS
from tests import support
from tests.integration.conftest import ServerThread

Obj = dict[str, Any]
TIMEOUT = 30.0
NODES_N = 3
GRACE = 3.0  # node_monitor_grace_period: the kubelets must renew their leases well within it
CONFIG = KubeletConfig(renew_interval=0.5)
VICTIM = "hollow-2"
SHORT_TOLERATIONS = [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}
                     for k in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


WORKLOADS = _have("kubelite.controllers.replicaset") and _have("kubelite.controllers.deployment")
SCHEDULER = _have("kubelite.scheduler.scheduler")


wait_for = partial(support.wait_for, timeout=TIMEOUT, interval=0.1)


class Cluster:
    def __init__(self, server: ServerThread) -> None:
        self.server = server
        assert server.runtime.socket_path is not None
        # the kubelets talk TLS with a client certificate, as a remote agent would
        self.client = Client(Connection.from_kubeconfig(server.kubeconfig), user_agent="kubelet/hollow-test")
        self.nodes = HollowNodes(self.client, NODES_N, prefix="hollow-", config=CONFIG)
        self.revived: HollowNodes | None = None

    def api(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.server.call(getattr(self.client, method)(*args, **kwargs))

    def node(self, name: str) -> Obj:
        return dict(self.api("get", NODES, name))

    def pods(self, ns: str) -> list[Obj]:
        return list(self.api("list", PODS, ns)["items"])

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.server.kubectl(*args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    controllers = "nodeipam,nodelifecycle" + (",replicaset,deployment" if WORKLOADS else "")
    server = ServerThread(tmp_path_factory.mktemp("hollow"), controllers=controllers, scheduler=SCHEDULER,
                          node_monitor_grace_period=GRACE).start()
    cluster = Cluster(server)
    try:
        server.call(cluster.nodes.start())
        yield cluster
    finally:
        server.call(cluster.nodes.stop())
        if cluster.revived is not None:
            server.call(cluster.revived.stop())
        server.call(cluster.client.close())
        server.stop()


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = f"h-{uuid.uuid4().hex[:8]}"
    cluster.server.kubectl("create", "namespace", name)
    return name


def pod_manifest(name: str, ns: str, *, node: str | None = None, tolerations: list[Obj] | None = None,
                 labels: dict[str, str] | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "app", "image": "nginx:1.27"}], "terminationGracePeriodSeconds": 30}
    if node:
        spec["nodeName"] = node
    if tolerations:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": spec}


def web_deployment(ns: str) -> Obj:
    """Three replicas that prefer the node about to die (placed there by the scheduler, or bound
    to it directly without one), tolerating its death for 2 s."""
    spec: Obj = {"containers": [{"name": "app", "image": "nginx"}], "tolerations": SHORT_TOLERATIONS}
    if SCHEDULER:
        term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [VICTIM]}]}
        spec["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "preference": term}]}}
    else:
        spec["nodeName"] = VICTIM
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}}}


def apply(cluster: Cluster, *objs: Obj) -> None:
    cluster.server.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                 "items": list(objs)}))


def running(pod: Obj) -> bool:
    return pod.get("status", {}).get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


# ----- registration ------------------------------------------------------------------------------

def test_nodes_register_ready_with_pod_cidrs(cluster: Cluster) -> None:
    table = cluster.server.kubectl("get", "nodes", "-o", "wide").stdout
    rows = [line.split() for line in table.splitlines()[1:]]
    assert sorted(r[0] for r in rows) == [f"hollow-{i}" for i in range(NODES_N)]
    assert all(r[1] == "Ready" and r[4] == "v1.37.0" and r[-1] == "fake://1.0" for r in rows), table
    assert [r[5] for r in sorted(rows)] == [f"198.19.128.{16 + i}" for i in range(NODES_N)]

    def pod_cidrs() -> list[str]:
        return [n["spec"].get("podCIDR") for n in cluster.kubectl_json("get", "nodes")["items"]]

    cidrs = wait_for(lambda: (c := pod_cidrs()) and all(c) and c, what="a podCIDR on every node")
    assert len(set(cidrs)) == NODES_N
    assert all(ipaddress.IPv4Network(c).subnet_of(ipaddress.IPv4Network("198.18.0.0/16")) for c in cidrs)
    assert all(ipaddress.ip_network(c).prefixlen == 24 for c in cidrs)

    node = cluster.node("hollow-0")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == ("True", "KubeletReady",
                                                                    "kubelet is posting ready status")
    assert {c["type"] for c in node["status"]["conditions"]} == {"Ready", "MemoryPressure", "DiskPressure",
                                                                 "PIDPressure"}
    assert node["status"]["capacity"]["pods"] == "110" and node["status"]["capacity"]["cpu"] == "4"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "hollow-0"
    lease = cluster.kubectl_json("get", "lease", "hollow-0", "-n", "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == "hollow-0" and lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]


# ----- pods --------------------------------------------------------------------------------------

def test_bound_pods_run_with_addresses_from_the_pod_cidr(cluster: Cluster, ns: str) -> None:
    apply(cluster, *(pod_manifest(f"p{i}", ns, node=f"hollow-{i}") for i in range(NODES_N)))
    pods = wait_for(lambda: (p := cluster.pods(ns)) and all(running(x) for x in p) and p, what="pods Running")
    cidrs = {n: ipaddress.ip_network(cluster.node(n)["spec"]["podCIDR"]) for n in cluster.nodes.names}
    for pod in pods:
        node = pod["spec"]["nodeName"]
        assert ipaddress.ip_address(pod["status"]["podIP"]) in cidrs[node]
        assert pod["status"]["hostIP"] == cluster.nodes.kubelets[node].node_config.internal_ip
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] and status["started"] and status["containerID"].startswith("fake://")
        assert status["image"] == "docker.io/library/nginx:1.27"
    wide = cluster.server.kubectl("get", "pods", "-n", ns, "-o", "wide").stdout
    assert all(p["status"]["podIP"] in wide for p in pods), wide
    assert wide.count("Running") == NODES_N


def test_graceful_delete_is_finished_by_the_kubelet(cluster: Cluster, ns: str) -> None:
    apply(cluster, pod_manifest("doomed", ns, node="hollow-0"))
    wait_for(lambda: running(cluster.api("get", PODS, "doomed", ns)), what="pod Running")
    began = time.monotonic()
    cluster.server.kubectl("delete", "pod", "doomed", "-n", ns, "--timeout=20s")  # waits until it is gone
    assert time.monotonic() - began < 15  # not the 30 s grace period: the hollow containers stop at once
    assert cluster.server.kubectl("get", "pod", "doomed", "-n", ns, check=False).returncode != 0
    reasons = [e["reason"] for e in cluster.api("list", EVENTS, ns)["items"]
               if e["involvedObject"]["name"] == "doomed"]
    assert {"Created", "Started", "Killing"} <= set(reasons)


# ----- node failure ------------------------------------------------------------------------------

def _taints(cluster: Cluster, name: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in cluster.node(name)["spec"].get("taints") or []}


def test_dead_node_is_tainted_and_its_pods_evicted(cluster: Cluster, ns: str) -> None:
    apply(cluster, pod_manifest("short", ns, node=VICTIM, tolerations=SHORT_TOLERATIONS),
          pod_manifest("patient", ns, node=VICTIM))
    if WORKLOADS:
        apply(cluster, web_deployment(ns))
    pods = wait_for(lambda: (p := cluster.pods(ns)) and len(p) == (5 if WORKLOADS else 2)
                    and all(running(x) for x in p) and p, what="pods Running")
    if WORKLOADS:
        assert any(p["spec"]["nodeName"] == VICTIM for p in pods if p["metadata"]["name"].startswith("web-"))

    cluster.server.call(cluster.nodes.stop_node(VICTIM))
    began = time.monotonic()
    wait_for(lambda: {("node.kubernetes.io/unreachable", "NoExecute"),
                      ("node.kubernetes.io/unreachable", "NoSchedule")} <= _taints(cluster, VICTIM),
             what="unreachable taints", timeout=20)
    detected = time.monotonic() - began
    node = cluster.node(VICTIM)
    conditions = {c["type"]: c for c in node["status"]["conditions"]}
    assert all(conditions[t]["status"] == "Unknown" for t in ("Ready", "MemoryPressure", "DiskPressure",
                                                              "PIDPressure"))
    assert (conditions["Ready"]["reason"], conditions["Ready"]["message"]) == (
        "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert f"{VICTIM}   NotReady" in cluster.server.kubectl("get", "nodes").stdout
    assert detected < 12, detected

    short = wait_for(lambda: (p := cluster.api("get", PODS, "short", ns))["metadata"].get("deletionTimestamp") and p,
                     what="the pod tolerating 2 s to be evicted", timeout=15)
    assert any(c["type"] == "DisruptionTarget" and c["reason"] == "DeletionByTaintManager"
               for c in short["status"]["conditions"])
    patient = cluster.api("get", PODS, "patient", ns)
    assert not patient["metadata"].get("deletionTimestamp")  # the default toleration is 300 s
    assert any(c["type"] == "Ready" and c["status"] == "False" for c in patient["status"]["conditions"])
    events = cluster.api("list", EVENTS, ns)["items"]
    assert any(e["reason"] == "TaintManagerEviction" and e["message"] == f"Marking for deletion Pod {ns}/short"
               for e in events)
    # the dead node is still schedulable for nobody: NoSchedule taint present, other nodes untainted
    assert not _taints(cluster, "hollow-0")

    if WORKLOADS and SCHEDULER:
        def replaced() -> bool:
            live = [p for p in cluster.pods(ns) if p["metadata"].get("labels", {}).get("app") == "web"
                    and not p["metadata"].get("deletionTimestamp")]
            return len(live) == 3 and all(running(p) and p["spec"]["nodeName"] != VICTIM for p in live)
        wait_for(replaced, what="deployment pods replaced on live nodes", timeout=30)


def test_node_that_comes_back_is_ready_and_untainted(cluster: Cluster, ns: str) -> None:
    if _taints(cluster, VICTIM) == set():
        pytest.skip("runs after the node failure test")
    cluster.revived = HollowNodes(cluster.client, 1, prefix="hollow-", first_index=2, config=CONFIG)
    cluster.server.call(cluster.revived.start())
    wait_for(lambda: not _taints(cluster, VICTIM), what="taints removed", timeout=20)
    assert f"{VICTIM}   Ready" in cluster.server.kubectl("get", "nodes").stdout
    # the revived kubelet finishes off the pods that were evicted while it was away
    def on_victim() -> list[Obj]:
        return [p for p in cluster.api("list", PODS)["items"] if p["spec"].get("nodeName") == VICTIM]

    wait_for(lambda: not any(p["metadata"].get("deletionTimestamp") for p in on_victim()),
             what="terminating pods on the revived node deleted")
    # the pod that tolerated the outage runs on, Ready again, with the address it had
    patient = wait_for(lambda: [p for p in on_victim() if p["metadata"]["name"] == "patient" and running(p)],
                       what="the patient pod Ready again")[0]
    assert ipaddress.ip_address(patient["status"]["podIP"]) in ipaddress.ip_network(
        cluster.node(VICTIM)["spec"]["podCIDR"])


# ----- the command line (runs last: its nodes are deleted afterwards) ------------------------------

@pytest.mark.parametrize("args", [["agent", "--runtime", "fake", "--name", "cli-agent", "--max-pods", "20"],
                                  ["hollow-nodes", "--count", "2", "--prefix", "cli-hollow-", "--first-index", "50"]])
def test_command_line_agents(cluster: Cluster, args: list[str], tmp_path: Any) -> None:
    import kubelite.cli.agent

    names = ["cli-agent"] if args[0] == "agent" else ["cli-hollow-50", "cli-hollow-51"]
    if args[0] == "agent" and hasattr(kubelite.cli.agent, "add_streaming_arguments"):
        # the agent serves logs/exec with a certificate from the cluster PKI
        args = [*args, "--pki-dir", str(cluster.server.config.data_dir / "pki"), "--streaming-port", "0",
                "--data-dir", str(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-m", "kubelite.cli.main", *args, "--kubeconfig",
                             str(cluster.server.kubeconfig), "--no-events", "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def ready() -> bool:
            table = cluster.server.kubectl("get", "nodes", *names, check=False).stdout
            return table.count(" Ready ") == len(names)
        wait_for(ready, what=f"{names} Ready")
        if args[0] == "agent":
            assert cluster.node("cli-agent")["status"]["capacity"]["pods"] == "20"
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
        cluster.server.kubectl("delete", "node", *names, "--wait=false", check=False)
    assert proc.returncode == 0, output

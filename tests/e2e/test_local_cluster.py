"""Services on the wire on a two-node runc cluster made by `kubelite start` (each node a network
namespace with its own agent, Service proxy and pod routes): cluster DNS from pods, NodePort on
every node address and the LoadBalancer address from the host, even spread over four pods on two
nodes, a rolling update under steady load with zero failed requests, scale to zero and back,
rules removed with their Service, a killed node's pods moving to the other node, and `kubelite
delete` leaving nothing behind. The order of the tests is the order of a user's session.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.local_fixtures import (
    NAME,
    NODE_IPS,
    Load,
    LocalCluster,
    http_get,
    running_cluster,
    spread,
    wait_for,
)

pytestmark = pytest.mark.e2e
HTTPD = "docker.io/kubelite/httpd:latest"
HTTPD_V2 = "docker.io/kubelite/httpd:v2"
LABELS = {"app": "web"}


def web_deployment(image: str = HTTPD, replicas: int = 4) -> dict:
    """httpd pods that line up with a rolling update: Ready only when serving, out of the
    endpoints before they stop (preStop), and a short toleration so a dead node's pods move."""
    container = {"name": "httpd", "image": image, "imagePullPolicy": "Never",
                 "readinessProbe": {"httpGet": {"path": "/cgi-bin/id", "port": 80}, "periodSeconds": 1},
                 "lifecycle": {"preStop": {"exec": {"command": ["sleep", "2"]}}}}
    tolerations = [{"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": 2} for t in ("not-ready", "unreachable")]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": LABELS},
                     "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": LABELS},
                                  "spec": {"containers": [container], "terminationGracePeriodSeconds": 10,
                                           "tolerations": tolerations}}}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path_factory.mktemp("local")) as c:
        yield c


@pytest.fixture(scope="module")
def web(cluster: LocalCluster) -> LocalCluster:
    cluster.kubelite("image", "tag", HTTPD, HTTPD_V2)
    cluster.apply(web_deployment())
    cluster.kubectl("expose", "deployment", "web", "--port", "80", "--type", "NodePort")
    cluster.kubectl("expose", "deployment", "web", "--name", "web-lb", "--port", "8080", "--target-port", "80",
                    "--type", "LoadBalancer")
    cluster.kubectl("create", "service", "externalname", "docs", "--external-name", "docs.example.test")
    cluster.running("app=web", 4)
    return cluster


def a_pod(cluster: LocalCluster) -> str:
    return str(cluster.pods("app=web")[0]["metadata"]["name"])


def test_an_offline_cluster_contacts_no_registry_outside(cluster: LocalCluster) -> None:
    cluster.kubectl("run", "remote", "--image=docker.io/library/not-on-this-machine:1.0", "--restart=Never")
    wait_for(lambda: "this node pulls only from 198.19.132.1:" in cluster.kubectl(
        "get", "events", "--field-selector", "involvedObject.name=remote,reason=Failed"), what="the refusal")
    egress = subprocess.run(["nft", "list", "table", "ip", f"{NAME}-egress"], capture_output=True, text=True).stdout
    assert "drop" in egress and "masquerade" not in egress
    cluster.kubectl("delete", "pod", "remote", "--grace-period=0", "--force")


def test_nodes_are_namespaces_on_the_bridge(cluster: LocalCluster) -> None:
    nodes = cluster.json("get", "nodes")["items"]
    addresses = sorted(a["address"] for n in nodes for a in n["status"]["addresses"] if a["type"] == "InternalIP")
    assert addresses == list(NODE_IPS)
    assert sorted(n["metadata"]["name"] for n in nodes) == [NAME, f"{NAME}-m02"]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{NAME}0-n1" in netns and f"{NAME}0-n2" in netns
    assert cluster.json("get", "nodes")["items"][0]["spec"]["podCIDR"].startswith("198.18.2")


def test_dns_from_a_pod(web: LocalCluster) -> None:
    pod = a_pod(web)
    cluster_ip = web.service("web")["spec"]["clusterIP"]
    fqdn = web.pod_exec(pod, "nslookup web.default.svc.cluster.local")
    assert f"Address: {cluster_ip}" in fqdn
    assert "web-" in web.pod_http(pod, "web.default.svc.cluster.local", 80)
    assert "web-" in web.pod_http(pod, "web", 80)  # the short name, through the search path
    cname = web.pod_exec(pod, "nslookup -type=cname docs.default.svc.cluster.local")
    assert "canonical name = docs.example.test" in cname
    missing = web.pod_exec(pod, "nslookup nothing.default.svc.cluster.local", check=False)
    assert "NXDOMAIN" in missing


def test_nodeport_on_every_node_and_the_load_balancer_from_the_host(web: LocalCluster) -> None:
    node_port = web.service("web")["spec"]["ports"][0]["nodePort"]
    for node_ip in NODE_IPS:
        assert http_get(node_ip, node_port).startswith("web-")
    lb = web.service("web-lb")
    ingress = wait_for(lambda: (web.service("web-lb").get("status", {}).get("loadBalancer") or {}).get("ingress"),
                       what="a LoadBalancer address")
    assert ingress[0]["ip"].startswith("198.19.202.")
    assert http_get(ingress[0]["ip"], 8080).startswith("web-")
    pod = a_pod(web)
    assert web.pod_http(pod, ingress[0]["ip"], 8080).startswith("web-")  # and from a pod
    assert lb["spec"]["ports"][0]["port"] == 8080


def test_four_pods_on_two_nodes_share_the_traffic(web: LocalCluster) -> None:
    pods = web.running("app=web", 4)
    assert {p["spec"]["nodeName"] for p in pods} == {NAME, f"{NAME}-m02"}
    cluster_ip = web.service("web")["spec"]["clusterIP"]
    counts = spread(lambda: http_get(cluster_ip, 80), 200)
    assert set(counts) == {p["metadata"]["name"] for p in pods}
    assert min(counts.values()) >= 20, counts  # an even share is 50; random balancing stays well above 20


def test_hairpin_a_pod_reaches_itself_through_its_service(web: LocalCluster) -> None:
    pod = a_pod(web)
    answers = []
    while pod not in answers and len(answers) < 60:  # a quarter of the requests go to itself
        answers.append(web.pod_http(pod, "web", 80))
    assert all(a.startswith("web-") for a in answers), answers  # no request failed, its own included
    assert pod in answers, answers


def test_rolling_update_under_load_fails_no_request(web: LocalCluster) -> None:
    cluster_ip = web.service("web")["spec"]["clusterIP"]
    old = {p["metadata"]["name"] for p in web.running("app=web", 4)}
    with Load(lambda: http_get(cluster_ip, 80), clients=20) as load:
        time.sleep(2)
        web.kubectl("set", "image", "deployment/web", f"httpd={HTTPD_V2}")
        web.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
        time.sleep(3)
    new = {p["metadata"]["name"] for p in web.running("app=web", 4)}
    assert not old & new
    assert load.failures == [], f"{len(load.failures)} failed of {sum(load.answers.values())}: {load.failures[:5]}"
    assert sum(load.answers.values()) > 200
    assert new <= set(load.answers)  # the new pods served


def test_scale_to_zero_refuses_at_once_and_scaling_back_resumes(web: LocalCluster) -> None:
    cluster_ip = web.service("web")["spec"]["clusterIP"]
    web.kubectl("scale", "deployment/web", "--replicas=0")
    wait_for(lambda: not web.pods("app=web"), what="no pods")

    def refused() -> bool:
        started = time.monotonic()
        try:
            http_get(cluster_ip, 80, timeout=5)
        except ConnectionRefusedError:
            return time.monotonic() - started < 1.0
        except OSError:
            return False
        return False

    wait_for(refused, timeout=20, what="an immediate refusal")
    web.kubectl("scale", "deployment/web", "--replicas=4")
    web.running("app=web", 4)
    wait_for(lambda: _answers(cluster_ip), timeout=20, what="traffic to resume")


def _answers(ip: str) -> bool:
    try:
        return http_get(ip, 80).startswith("web-")
    except OSError:
        return False


def test_deleting_a_service_removes_its_rules(web: LocalCluster) -> None:
    web.kubectl("expose", "deployment", "web", "--name", "short-lived", "--port", "81", "--target-port", "80")
    ip = web.service("short-lived")["spec"]["clusterIP"]
    wait_for(lambda: ip in web.netns_nft(1) and ip in web.netns_nft(2), what="rules for the new Service")
    web.kubectl("delete", "service", "short-lived")
    wait_for(lambda: ip not in web.netns_nft(1) and ip not in web.netns_nft(2), timeout=20, what="rules removed")


def test_stopping_an_agent_removes_its_proxy_table(web: LocalCluster) -> None:
    assert "table ip klt" in web.netns_nft(1)
    pid_file = web.data / "run" / f"node-{NAME}.pid"
    pid = int(pid_file.read_text())
    subprocess.run(["kill", "-TERM", str(pid)], check=True)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or b"Z" in Path(f"/proc/{pid}/stat").read_bytes()[:60],
             timeout=30, what="the agent to exit")
    assert web.netns_nft(1) == ""  # the namespace is still there; the table went with the agent
    started = web.start()  # brings the agent back, with its rules
    assert started.returncode == 0, started.stdout + started.stderr
    wait_for(lambda: "table ip klt" in web.netns_nft(1), timeout=30, what="the table back")


def test_nodes_are_added_and_removed(web: LocalCluster) -> None:
    added = web.kubelite("node", "add")
    assert added.returncode == 0, added.stdout + added.stderr
    third = f"{NAME}-m03"
    assert f"Node {third} is Ready" in added.stdout
    listed = web.kubelite("node", "list").stdout
    assert f"{third}\t198.19.132.4\tRunning" in listed
    web.kubectl("scale", "deployment/web", "--replicas=6")
    wait_for(lambda: any(p["spec"]["nodeName"] == third for p in web.running("app=web", 6)), timeout=60,
             what="a pod on the new node")
    deleted = web.kubelite("node", "delete", third)
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert third not in web.kubectl("get", "nodes")
    assert f"{NAME}0-n3" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    pods = web.running("app=web", 6)  # the deleted node's pods came back on the others
    assert {p["spec"]["nodeName"] for p in pods} <= {NAME, f"{NAME}-m02"}
    grown = web.start("--nodes", "3")  # `start --nodes` adds, and removes, too
    assert grown.returncode == 0, grown.stdout + grown.stderr
    assert third in web.kubectl("get", "nodes")
    shrunk = web.start("--nodes", "2")
    assert shrunk.returncode == 0 and f"Removing node {third}" in shrunk.stdout, shrunk.stdout + shrunk.stderr
    assert third not in web.kubectl("get", "nodes")
    web.kubectl("scale", "deployment/web", "--replicas=4")
    web.running("app=web", 4)


def test_a_killed_node_hands_its_pods_to_the_other(web: LocalCluster) -> None:
    victim = f"{NAME}-m02"
    web.running("app=web", 4)
    pid = int((web.data / "run" / f"node-{victim}.pid").read_text())
    subprocess.run(["kill", "-9", str(pid)], check=True)
    subprocess.run(["ip", "netns", "del", f"{NAME}0-n2"], check=True)
    wait_for(lambda: all(p["spec"]["nodeName"] == NAME for p in web.running("app=web", 4)), timeout=90,
             what="all pods on the surviving node")
    cluster_ip = web.service("web")["spec"]["clusterIP"]
    assert http_get(cluster_ip, 80).startswith("web-")


def test_stop_then_start_keeps_the_workloads(web: LocalCluster) -> None:
    stopped = web.kubelite("stop")
    assert stopped.returncode == 0, stopped.stderr
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{NAME}0-n" not in netns  # nothing of the nodes runs while stopped
    started = web.start()
    assert started.returncode == 0, started.stdout + started.stderr
    web.running("app=web", 4)
    assert "web-lb" in web.kubectl("get", "services")
    node_port = web.service("web")["spec"]["ports"][0]["nodePort"]
    wait_for(lambda: _answers_at(NODE_IPS[0], node_port), timeout=30, what="the NodePort after a restart")


def _answers_at(ip: str, port: int) -> bool:
    try:
        return http_get(ip, port).startswith("web-")
    except OSError:
        return False


def test_the_data_dir_is_the_clusters(web: LocalCluster) -> None:
    assert (web.data / "cluster.json").exists()
    assert Path(web.root / "home" / ".kube" / "config").read_text().count("current-context: kubelite") == 1

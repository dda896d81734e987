"""The Kubernetes Basics tutorial, command by command as the README gives it, with the real kubectl
on a two-node runc cluster made by `kubelite start`: what each command prints and what it does.

The tutorial's app is the offline image `docker.io/kubelite/kubernetes-bootcamp:v1` (and `:v2`),
which answers like the tutorial's: "Hello Kubernetes bootcamp! | Running on: <pod> | v=1".
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e.local_fixtures import (
    NAME,
    NODE_IPS,
    LocalCluster,
    http_get,
    running_cluster,
    wait_for,
)

pytestmark = pytest.mark.e2e
APP = "kubernetes-bootcamp"
V1 = "docker.io/kubelite/kubernetes-bootcamp:v1"
V2 = "docker.io/kubelite/kubernetes-bootcamp:v2"


@pytest.fixture(scope="module")
def k(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path_factory.mktemp("tutorial")) as c:
        yield c


def curl(ip: str, port: int) -> str:
    return http_get(ip, port, "/")


def pod_name(k: LocalCluster) -> str:
    return str(k.running(f"app={APP}", len(k.pods(f"app={APP}")) or 1)[0]["metadata"]["name"])


def node_port(k: LocalCluster, service: str = APP) -> int:
    return int(k.kubectl("get", f"services/{service}", "-o", "go-template={{(index .spec.ports 0).nodePort}}"))


def test_1_create_a_cluster(k: LocalCluster) -> None:
    nodes = k.kubectl("get", "nodes")
    assert re.search(rf"^{NAME}\s+Ready\s+<none>\s+\S+\s+v1\.37\.0", nodes, re.M), nodes
    assert re.search(rf"^{NAME}-m02\s+Ready", nodes, re.M), nodes
    info = k.kubectl("cluster-info")
    assert "Kubernetes control plane is running at https://127.0.0.1:" in info and "CoreDNS is running at" in info
    version = k.kubectl("version")
    assert "Server Version: v1.37.0" in version


def test_2_deploy_an_app(k: LocalCluster) -> None:
    assert k.kubectl("create", "deployment", APP, f"--image={V1}").strip() == f"deployment.apps/{APP} created"
    k.running(f"app={APP}", 1)
    deployments = k.kubectl("get", "deployments")
    assert re.search(rf"^{APP}\s+1/1\s+1\s+1\s+", deployments, re.M), deployments


def test_3_explore_the_app(k: LocalCluster) -> None:
    pods = k.kubectl("get", "pods")
    assert re.search(rf"^{APP}-\S+\s+1/1\s+Running\s+0\s+", pods, re.M), pods
    described = k.kubectl("describe", "pods")
    for expected in (f"Image:          {V1}", "Status:           Running", "Events:", "Successfully assigned",
                     "Started container kubernetes-bootcamp", f"Node:             {NAME}"):
        assert expected in described, (expected, described)
    pod = pod_name(k)
    wait_for(lambda: "Kubernetes Bootcamp App Started At:" in k.kubectl("logs", pod), what="the app's log")
    env = k.kubectl("exec", pod, "--", "env")
    assert f"HOSTNAME={pod}" in env and "KUBERNETES_SERVICE_HOST=" in env
    answer = k.pod_exec(pod, "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc localhost 8080 | tail -1")
    assert answer.strip() == f"Hello Kubernetes bootcamp! | Running on: {pod} | v=1"


def test_4_expose_the_app(k: LocalCluster) -> None:
    assert "kubernetes   ClusterIP" in k.kubectl("get", "services")
    exposed = k.kubectl("expose", f"deployment/{APP}", "--type=NodePort", "--port", "8080")
    assert exposed.strip() == f"service/{APP} exposed"
    described = k.kubectl("describe", f"services/{APP}")
    assert "Type:                     NodePort" in described and "Endpoints:" in described
    port = node_port(k)
    node_ip = k.kubectl("get", "nodes", "-o", "jsonpath={.items[0].status.addresses[0].address}")
    assert node_ip in NODE_IPS
    pod = pod_name(k)
    assert curl(node_ip, port) == f"Hello Kubernetes bootcamp! | Running on: {pod} | v=1"
    url = k.kubelite("service", APP, "--url")
    assert url.returncode == 0 and url.stdout.strip().startswith("http://"), url.stderr
    host_port = url.stdout.split()[0].removeprefix("http://").split(":")
    assert curl(host_port[0], int(host_port[1])).startswith("Hello Kubernetes bootcamp!")


def test_4_labels(k: LocalCluster) -> None:
    assert "Labels:                 app=kubernetes-bootcamp" in k.kubectl("describe", "deployment")
    assert APP in k.kubectl("get", "pods", "-l", f"app={APP}")
    assert APP in k.kubectl("get", "services", "-l", f"app={APP}")
    pod = pod_name(k)
    assert k.kubectl("label", "pods", pod, "version=v1").strip() == f"pod/{pod} labeled"
    assert "version=v1" in k.kubectl("describe", "pods", pod)
    assert pod in k.kubectl("get", "pods", "-l", "version=v1")
    port = node_port(k)
    assert k.kubectl("delete", "service", "-l", f"app={APP}").startswith(f'service "{APP}" deleted')
    assert APP not in k.kubectl("get", "services")
    with pytest.raises(OSError):  # nothing listens on the node port any more
        curl(NODE_IPS[0], port)
    inside = k.pod_exec(pod, "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc localhost 8080 | tail -1")
    assert inside.strip().startswith("Hello Kubernetes bootcamp!")  # the app still runs


def test_5_scale_the_app(k: LocalCluster) -> None:
    k.kubectl("expose", f"deployment/{APP}", "--type=NodePort", "--port", "8080")
    rs = k.kubectl("get", "rs")
    assert re.search(rf"^{APP}-\S+\s+1\s+1\s+1\s+", rs, re.M), rs
    assert k.kubectl("scale", f"deployments/{APP}", "--replicas=4").strip() == f"deployment.apps/{APP} scaled"
    pods = k.running(f"app={APP}", 4)
    assert {p["spec"]["nodeName"] for p in pods} == {NAME, f"{NAME}-m02"}
    wide = k.kubectl("get", "pods", "-o", "wide")
    assert wide.count("Running") == 4 and "198.18.2" in wide
    assert "4 desired | 4 updated | 4 total | 4 available" in k.kubectl("describe", f"deployments/{APP}")
    port = node_port(k)
    wait_for(lambda: "+ 1 more..." in k.kubectl("describe", f"services/{APP}"), what="four endpoints")  # 3 shown
    answers = {curl(NODE_IPS[0], port) for _ in range(40)}
    assert {a.split(" | ")[1] for a in answers} == {f"Running on: {p['metadata']['name']}" for p in pods}
    k.kubectl("scale", f"deployments/{APP}", "--replicas=2")
    k.running(f"app={APP}", 2)


def test_6_update_the_app(k: LocalCluster) -> None:
    port = node_port(k)
    updated = k.kubectl("set", "image", f"deployments/{APP}", f"{APP}={V2}")
    assert updated.strip() == f"deployment.apps/{APP} image updated"
    status = k.kubectl("rollout", "status", f"deployments/{APP}", "--timeout=120s")
    assert f'deployment "{APP}" successfully rolled out' in status
    wait_for(lambda: curl(NODE_IPS[1], port).endswith("v=2"), timeout=20, what="v2 answering")
    assert all(V2 in p["spec"]["containers"][0]["image"] for p in k.running(f"app={APP}", 2))
    undone = k.kubectl("rollout", "undo", f"deployments/{APP}")
    assert undone.strip() == f"deployment.apps/{APP} rolled back"
    k.kubectl("rollout", "status", f"deployments/{APP}", "--timeout=120s")
    wait_for(lambda: all(curl(NODE_IPS[0], port).endswith("v=1") for _ in range(6)), timeout=20, what="v1 again")
    history = k.kubectl("rollout", "history", f"deployments/{APP}")
    assert re.search(r"^2\s", history, re.M) and re.search(r"^3\s", history, re.M), history
    k.kubectl("rollout", "undo", f"deployments/{APP}", "--to-revision=2")  # any earlier revision
    k.kubectl("rollout", "status", f"deployments/{APP}", "--timeout=120s")
    wait_for(lambda: all(curl(NODE_IPS[0], port).endswith("v=2") for _ in range(6)), timeout=20, what="v2 again")


def test_6_an_update_to_a_missing_image_is_undone(k: LocalCluster) -> None:
    missing = f"localhost:{k.registry_port}/kubernetes-bootcamp:v10"  # the cluster registry has no v10
    k.kubectl("set", "image", f"deployments/{APP}", f"{APP}={missing}")
    wait_for(lambda: re.search(r"(ErrImagePull|ImagePullBackOff)", k.kubectl("get", "pods")), timeout=60,
             what="the new pod failing to pull")
    assert re.search(rf"^{APP}\s+2/2\s+1\s+2\s+", k.kubectl("get", "deployments"), re.M)  # the old pods serve
    # kubectl 1.37 shows events for several objects only when asked (kubernetes PR 137145)
    wait_for(lambda: f'Failed to pull image "{missing}"' in k.kubectl("describe", "pods", "-l", f"app={APP}",
                                                                     "--show-events=true"),
             timeout=30, what="the Failed event in describe")
    k.kubectl("rollout", "undo", f"deployments/{APP}")
    k.kubectl("rollout", "status", f"deployments/{APP}", "--timeout=120s")
    assert all(p["spec"]["containers"][0]["image"] == V2 for p in k.running(f"app={APP}", 2))


def test_7_load_balancer_and_kubelite_service(k: LocalCluster) -> None:
    k.kubectl("expose", f"deployment/{APP}", "--name", "bootcamp-lb", "--type=LoadBalancer", "--port", "80",
              "--target-port", "8080")
    wait_for(lambda: "198.19.202." in k.kubectl("get", "services", "bootcamp-lb"), what="an EXTERNAL-IP")
    url = k.kubelite("service", "bootcamp-lb", "--url")
    assert url.returncode == 0, url.stderr
    first = url.stdout.split()[0]
    assert first.startswith("http://198.19.202.") and first.endswith(":80")
    assert curl(first.removeprefix("http://").split(":")[0], 80).startswith("Hello Kubernetes bootcamp!")
    table = k.kubelite("service", "bootcamp-lb")
    assert "|-----------|" in table.stdout and "bootcamp-lb" in table.stdout


def test_8_clean_up(k: LocalCluster) -> None:
    deleted = k.kubectl("delete", f"deployments/{APP}", f"services/{APP}", "services/bootcamp-lb")
    assert f'deployment.apps "{APP}" deleted' in deleted
    wait_for(lambda: not k.pods(f"app={APP}"), what="the pods gone")
    nodes = k.kubelite("node", "list")
    assert f"{NAME}\t{NODE_IPS[0]}\tRunning" in nodes.stdout
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.count(f"{NAME}0-n") == 2

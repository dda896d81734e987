"""The real kubectl against kubelite: every verb and kind of the API issue, output included."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.integration.conftest import ServerThread

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:IMAGE_TAG
        ports:
        - containerPort: 80
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
"""


def get_json(server: ServerThread, *args: str) -> dict:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


def header(output: str) -> list[str]:
    return output.splitlines()[0].split()


def test_discovery_short_names_and_categories(server: ServerThread) -> None:
    out = server.kubectl("api-resources").stdout
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    for name, short in [("pods", "po"), ("deployments", "deploy"), ("services", "svc"), ("nodes", "no"),
                        ("namespaces", "ns"), ("replicasets", "rs"), ("endpoints", "ep"),
                        ("configmaps", "cm"), ("serviceaccounts", "sa")]:
        assert name in rows and re.search(rf"\s{short}(\s|,)", rows[name]), rows.get(name)
    assert "endpointslices" in rows and "leases" in rows
    groups = server.kubectl("api-versions").stdout.split()
    assert {"v1", "apps/v1", "events.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1"} <= set(groups)


def test_create_deployment_protobuf_body_gets_upstream_defaults(server: ServerThread, ns: str) -> None:
    server.kubectl("-n", ns, "create", "deployment", "hello", "--image=registry.example/agnhost:2.40",
                   "--replicas=3", "--port=8080", "--", "/agnhost", "netexec")
    deploy = get_json(server, "-n", ns, "deployment", "hello")
    spec = deploy["spec"]
    assert spec["replicas"] == 3 and spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always" and pod_spec["dnsPolicy"] == "ClusterFirst"
    assert pod_spec["terminationGracePeriodSeconds"] == 30
    container = pod_spec["containers"][0]
    assert container["name"] == "agnhost" and container["command"] == ["/agnhost", "netexec"]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    meta = deploy["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and int(meta["resourceVersion"]) > 0


def test_get_columns_match_upstream(server: ServerThread, ns: str) -> None:
    server.kubectl("-n", ns, "create", "deployment", "cols", "--image=nginx")
    server.kubectl("-n", ns, "run", "pod1", "--image=busybox", "--", "sleep", "3600")
    server.kubectl("-n", ns, "create", "service", "nodeport", "np", "--tcp=80:8080")
    server.kubectl("-n", ns, "create", "configmap", "c1", "--from-literal=a=1", "--from-literal=b=2")
    server.kubectl("-n", ns, "create", "secret", "generic", "s1", "--from-literal=k=v")
    assert header(server.kubectl("-n", ns, "get", "pods").stdout) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    wide = server.kubectl("-n", ns, "get", "pods", "-o", "wide").stdout
    assert header(wide) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                            "READINESS", "GATES"]
    assert re.search(r"^pod1\s+0/1\s+Pending\s+0\s+\d+s\s+<none>\s+<none>", wide.splitlines()[1])
    deploy = server.kubectl("-n", ns, "get", "deploy", "-o", "wide").stdout
    assert header(deploy) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert re.search(r"^cols\s+0/1\s+0\s+0\s+\d+s\s+nginx\s+nginx\s+app=cols$", deploy.splitlines()[1])
    svc = server.kubectl("-n", ns, "get", "svc", "np").stdout
    assert header(svc) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert re.search(r"^np\s+NodePort\s+198\.19\.\d+\.\d+\s+<none>\s+80:3\d{4}/TCP\s+\d+s$", svc.splitlines()[1])
    cm = server.kubectl("-n", ns, "get", "cm", "c1").stdout
    assert header(cm) == ["NAME", "DATA", "AGE"] and cm.splitlines()[1].split()[1] == "2"
    secret = server.kubectl("-n", ns, "get", "secret", "s1").stdout
    assert secret.splitlines()[1].split()[:3] == ["s1", "Opaque", "1"]
    everything = server.kubectl("-n", ns, "get", "all").stdout
    assert "pod/pod1" in everything and "deployment.apps/cols" in everything and "service/np" in everything
    namespaces = server.kubectl("get", "ns", ns).stdout
    assert header(namespaces) == ["NAME", "STATUS", "AGE"] and "Active" in namespaces


def test_apply_multi_document_then_change_then_server_side(server: ServerThread, ns: str) -> None:
    first = server.kubectl("-n", ns, "apply", "-f", "-", input=MANIFEST.replace("IMAGE_TAG", "1.25")).stdout
    assert first.split("\n")[:3] == ["configmap/cfg created", "deployment.apps/web created", "service/web created"]
    changed = MANIFEST.replace("IMAGE_TAG", "1.26").replace('        - {name: B, value: "2"}\n', "")
    second = server.kubectl("-n", ns, "apply", "-f", "-", input=changed).stdout
    assert "configmap/cfg unchanged" in second and "deployment.apps/web configured" in second
    deploy = get_json(server, "-n", ns, "deploy", "web")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.26" and container["env"] == [{"name": "A", "value": "1"}]
    assert deploy["metadata"]["generation"] == 2
    ssa = server.kubectl("-n", ns, "apply", "--server-side", "-f", "-",
                         input=changed.replace("replicas: 2", "replicas: 3")).stdout
    assert "deployment.apps/web serverside-applied" in ssa
    assert get_json(server, "-n", ns, "deploy", "web")["spec"]["replicas"] == 3
    # server-side apply creates what is missing, with no GET first
    created = server.kubectl("-n", ns, "apply", "--server-side", "-f", "-",
                             input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa-new}\ndata: {k: v}\n").stdout
    assert "configmap/ssa-new serverside-applied" in created
    assert get_json(server, "-n", ns, "cm", "ssa-new")["data"] == {"k": "v"}


def test_scale_set_image_label_annotate_patch(server: ServerThread, ns: str) -> None:
    server.kubectl("-n", ns, "create", "deployment", "hello", "--image=bootcamp:v1")
    assert server.kubectl("-n", ns, "scale", "deployments/hello", "--replicas=4").stdout.strip() == \
        "deployment.apps/hello scaled"
    assert server.kubectl("-n", ns, "set", "image", "deployments/hello", "bootcamp=bootcamp:v2").stdout.strip() == \
        "deployment.apps/hello image updated"
    server.kubectl("-n", ns, "label", "deployment", "hello", "version=v1")
    server.kubectl("-n", ns, "annotate", "deployment", "hello", "note=hi")
    deploy = get_json(server, "-n", ns, "deploy", "hello")
    assert deploy["spec"]["replicas"] == 4
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "bootcamp:v2"
    assert deploy["metadata"]["labels"]["version"] == "v1" and deploy["metadata"]["annotations"]["note"] == "hi"
    assert deploy["metadata"]["generation"] == 3  # scale and image changed the spec; labels did not
    server.kubectl("-n", ns, "label", "deployment", "hello", "version-")
    server.kubectl("-n", ns, "patch", "deployment", "hello", "--type=merge", "-p", '{"spec":{"paused":true}}')
    server.kubectl("-n", ns, "patch", "deployment", "hello", "--type=json",
                   "-p", '[{"op":"add","path":"/spec/minReadySeconds","value":5}]')
    server.kubectl("-n", ns, "patch", "deployment", "hello", "-p",
                   '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}')
    deploy = get_json(server, "-n", ns, "deploy", "hello")
    assert "version" not in deploy["metadata"]["labels"]
    assert deploy["spec"]["paused"] is True and deploy["spec"]["minReadySeconds"] == 5
    names = [c["name"] for c in deploy["spec"]["template"]["spec"]["containers"]]
    assert sorted(names) == ["bootcamp", "sidecar"]  # strategic merge by name keeps the existing container
    scale = json.loads(server.kubectl("get", "--raw",
                                      f"/apis/apps/v1/namespaces/{ns}/deployments/hello/scale").stdout)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 4
    assert scale["status"]["selector"] == "app=hello"


def test_get_pods_watch_receives_events(server: ServerThread, ns: str) -> None:
    watcher = server.popen_kubectl("-n", ns, "get", "pods", "-w")
    try:
        time.sleep(1.0)
        server.kubectl("-n", ns, "run", "w1", "--image=busybox")
        server.kubectl("-n", ns, "label", "pod", "w1", "seen=yes")
        server.kubectl("-n", ns, "delete", "pod", "w1", "--wait=false")
        time.sleep(1.0)
    finally:
        watcher.terminate()
        out, err = watcher.communicate(timeout=10)
    lines = [line for line in out.splitlines() if line.strip()]
    assert header(lines[0]) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], out + err
    assert sum(line.startswith("w1 ") for line in lines) >= 3, out + err


def test_watch_raw_stream_from_resource_version(server: ServerThread, ns: str) -> None:
    listed = json.loads(server.kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/configmaps").stdout)
    rv = listed["metadata"]["resourceVersion"]
    server.kubectl("-n", ns, "create", "configmap", "wc", "--from-literal=a=1")
    server.kubectl("-n", ns, "delete", "configmap", "wc")
    raw = server.kubectl("get", "--raw",
                         f"/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=1").stdout
    events = [json.loads(line) for line in raw.splitlines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "wc"), ("DELETED", "wc")]
    revs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert revs == sorted(revs) and revs[0] > int(rv)


@pytest.mark.parametrize("cascade,finalizer", [("background", None), ("orphan", "orphan"),
                                               ("foreground", "foregroundDeletion")])
def test_delete_propagation_policies(server: ServerThread, ns: str, cascade: str, finalizer: str | None) -> None:
    server.kubectl("-n", ns, "create", "deployment", "d", "--image=nginx")
    server.kubectl("-n", ns, "delete", "deployment", "d", f"--cascade={cascade}", "--wait=false")
    result = server.kubectl("-n", ns, "get", "deployment", "d", "-o", "json", check=False)
    if finalizer is None:
        assert result.returncode == 1 and 'deployments.apps "d" not found' in result.stderr
        return
    deploy = json.loads(result.stdout)
    assert finalizer in deploy["metadata"]["finalizers"] and deploy["metadata"]["deletionTimestamp"]
    # the object goes when its last finalizer is removed (the garbage collector's job, done by hand here)
    server.kubectl("-n", ns, "patch", "deployment", "d", "--type=json",
                   "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    gone = server.kubectl("-n", ns, "get", "deployment", "d", check=False)
    assert gone.returncode == 1 and "not found" in gone.stderr


def test_delete_waits_for_graceful_pod_then_force(server: ServerThread, ns: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bound"},
           "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "busybox"}]}}
    server.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(pod))
    server.kubectl("-n", ns, "delete", "pod", "bound", "--wait=false")
    marked = get_json(server, "-n", ns, "pod", "bound")
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30 and marked["metadata"]["deletionTimestamp"]
    assert "Terminating" in server.kubectl("-n", ns, "get", "pod", "bound").stdout
    server.kubectl("-n", ns, "delete", "pod", "bound", "--grace-period=0", "--force")
    assert server.kubectl("-n", ns, "get", "pod", "bound", check=False).returncode == 1


def test_label_selectors_and_field_selectors(server: ServerThread, ns: str) -> None:
    for name, labels in [("a", "app=web,tier=fe"), ("b", "app=web,tier=be"), ("c", "app=db")]:
        server.kubectl("-n", ns, "run", name, "--image=busybox", f"--labels={labels}")
    names = lambda *sel: server.kubectl("-n", ns, "get", "pods", *sel, "-o", "name").stdout.split()  # noqa: E731
    assert names("-l", "app=web") == ["pod/a", "pod/b"]
    assert names("-l", "app!=web") == ["pod/c"]
    assert names("-l", "tier in (fe,qa)") == ["pod/a"]
    assert names("-l", "tier notin (fe)") == ["pod/b", "pod/c"]
    assert names("-l", "!tier") == ["pod/c"]
    assert names("--field-selector", "metadata.name=b") == ["pod/b"]
    assert names("--field-selector", "status.phase=Pending,metadata.name!=a") == ["pod/b", "pod/c"]
    bad = server.kubectl("-n", ns, "get", "pods", "--field-selector", "spec.bogus=1", check=False)
    assert bad.returncode == 1 and "field label not supported: spec.bogus" in bad.stderr


def test_list_pagination_with_limit_and_continue(server: ServerThread, ns: str) -> None:
    for i in range(7):
        server.kubectl("-n", ns, "create", "configmap", f"page-{i}")
    first = json.loads(server.kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/configmaps?limit=3").stdout)
    names = [item["metadata"]["name"] for item in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        page = json.loads(server.kubectl("get", "--raw",
                                         f"/api/v1/namespaces/{ns}/configmaps?limit=3&continue={token}").stdout)
        names += [item["metadata"]["name"] for item in page["items"]]
        token = page["metadata"].get("continue")
    assert [n for n in names if n.startswith("page-")] == [f"page-{i}" for i in range(7)]
    # kubectl pages through by itself with --chunk-size
    listed = server.kubectl("-n", ns, "get", "cm", "--chunk-size=2", "-o", "name").stdout.split()
    assert [n for n in listed if "page-" in n] == [f"configmap/page-{i}" for i in range(7)]


def test_explain(server: ServerThread) -> None:
    out = server.kubectl("explain", "deployment.spec.strategy").stdout
    assert "FIELD: strategy <DeploymentStrategy>" in out and "rollingUpdate" in out and "type" in out
    assert "containerPort" in server.kubectl("explain", "pods.spec.containers.ports").stdout


def test_events_and_leases_and_endpointslices(server: ServerThread, ns: str) -> None:
    event = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
             "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "test/ctl",
             "reportingInstance": "x", "action": "Testing", "reason": "Tested", "type": "Normal",
             "note": "it works", "regarding": {"kind": "Pod", "name": "p", "namespace": ns}}
    server.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(event))
    core = json.loads(server.kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/events/e1").stdout)
    assert core["message"] == "it works" and core["involvedObject"]["name"] == "p"
    events = server.kubectl("-n", ns, "get", "events").stdout
    assert header(events) == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert "pod/p" in events and "it works" in events
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l1"},
             "spec": {"holderIdentity": "me", "leaseDurationSeconds": 40}}
    server.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(lease))
    assert "me" in server.kubectl("-n", ns, "get", "lease", "l1").stdout
    slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s1"},
              "addressType": "IPv4", "endpoints": [{"addresses": ["198.18.1.2"]}],
              "ports": [{"port": 80, "protocol": "TCP"}]}
    server.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(slice_))
    assert "198.18.1.2" in server.kubectl("-n", ns, "get", "endpointslices", "s1").stdout

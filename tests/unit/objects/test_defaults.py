"""apply_defaults against what a real kube-apiserver returns (upstream's defaults.go facts)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubelite.objects.defaults import apply_defaults, default_pull_policy, qos_class
from kubelite.objects.registry import REGISTRY, ResourceType

DIGEST = "sha256:" + "a" * 64


def rt(api_version: str, kind: str) -> ResourceType:
    found = REGISTRY.by_kind(api_version, kind)
    assert found is not None
    return found


def defaulted(api_version: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    apply_defaults(rt(api_version, kind), obj)
    return obj


def kubectl_create_deployment(image: str = "nginx:1.25") -> dict[str, Any]:
    """What `kubectl create deployment hello --image=IMAGE` sends."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "hello", "labels": {"app": "hello"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "hello"}},
            "template": {"metadata": {"labels": {"app": "hello"}},
                         "spec": {"containers": [{"name": "nginx", "image": image, "resources": {}}]}},
            "strategy": {},
        },
        "status": {},
    }


def pod(**spec: Any) -> dict[str, Any]:
    containers = spec.pop("containers", [{"name": "app", "image": "nginx"}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": containers, **spec}}


def test_kubectl_create_deployment_gets_the_apiservers_defaults() -> None:
    obj = defaulted("apps/v1", "Deployment", kubectl_create_deployment())
    assert obj["spec"] == {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "hello"}},
        "template": {
            "metadata": {"labels": {"app": "hello"}},
            "spec": {
                "containers": [{
                    "name": "nginx", "image": "nginx:1.25", "resources": {},
                    "imagePullPolicy": "IfNotPresent",
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30,
            },
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
    assert obj["status"] == {}
    assert "minReadySeconds" not in obj["spec"]


def test_deployment_replicas_default_to_one_and_recreate_gets_no_rolling_update() -> None:
    raw = kubectl_create_deployment()
    del raw["spec"]["replicas"]
    raw["spec"]["strategy"] = {"type": "Recreate"}
    obj = defaulted("apps/v1", "Deployment", raw)
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["strategy"] == {"type": "Recreate"}


def test_explicit_values_are_kept() -> None:
    raw = kubectl_create_deployment()
    raw["spec"].update(replicas=0, revisionHistoryLimit=0,
                       strategy={"rollingUpdate": {"maxSurge": 1}})
    obj = defaulted("apps/v1", "Deployment", raw)
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["revisionHistoryLimit"] == 0
    assert obj["spec"]["strategy"] == {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"},
                                       "type": "RollingUpdate"}


def test_pod_templates_do_not_get_pod_only_defaults() -> None:
    spec = defaulted("apps/v1", "Deployment", kubectl_create_deployment())["spec"]["template"]["spec"]
    for key in ("enableServiceLinks", "serviceAccountName", "priority", "tolerations"):
        assert key not in spec


def test_replica_set_defaults() -> None:
    raw = kubectl_create_deployment()
    raw["kind"] = "ReplicaSet"
    del raw["spec"]["replicas"], raw["spec"]["strategy"]
    obj = defaulted("apps/v1", "ReplicaSet", raw)
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert obj["status"] == {"replicas": 0}


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("docker.io/library/nginx:latest", "Always"),
    ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/app", "Always"),
    ("localhost:5000/app:v2", "IfNotPresent"),
    (f"nginx@{DIGEST}", "IfNotPresent"),
    (f"nginx:latest@{DIGEST}", "Always"),
    ("Nginx", "IfNotPresent"),  # not a valid reference: upstream finds no tag
])
def test_image_pull_policy(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy
    obj = defaulted("v1", "Pod", pod(containers=[{"name": "a", "image": image}]))
    assert obj["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_explicit_pull_policy_is_kept() -> None:
    obj = defaulted("v1", "Pod", pod(containers=[{"name": "a", "image": "nginx", "imagePullPolicy": "Never"}]))
    assert obj["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_pod_gets_admission_and_strategy_defaults() -> None:
    obj = defaulted("v1", "Pod", pod())
    spec = obj["spec"]
    assert spec["enableServiceLinks"] is True
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
    ]
    assert obj["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert "uid" not in obj["metadata"] and "creationTimestamp" not in obj["metadata"]


def test_pod_keeps_its_own_tolerations_and_service_account() -> None:
    own = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
           "tolerationSeconds": 6000}
    obj = defaulted("v1", "Pod", pod(tolerations=[own], serviceAccount="builder"))
    assert obj["spec"]["tolerations"] == [own, {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                                "effect": "NoExecute", "tolerationSeconds": 300}]
    assert obj["spec"]["serviceAccountName"] == "builder"


def test_toleration_of_everything_needs_no_additions() -> None:
    obj = defaulted("v1", "Pod", pod(tolerations=[{"operator": "Exists"}]))
    assert obj["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_system_priority_classes() -> None:
    obj = defaulted("v1", "Pod", pod(priorityClassName="system-node-critical"))
    assert obj["spec"]["priority"] == 2000001000


def test_pod_requests_default_to_limits_and_quantities_are_canonical() -> None:
    resources = {"limits": {"cpu": 0.5, "memory": "1024Mi"}, "requests": {"memory": "512Mi"}}
    obj = defaulted("v1", "Pod", pod(containers=[{"name": "a", "image": "x", "resources": resources}]))
    assert obj["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "1Gi"},
        "requests": {"memory": "512Mi", "cpu": "500m"},
    }
    assert obj["status"]["qosClass"] == "Burstable"


@pytest.mark.parametrize(("resources", "expected"), [
    ([{}], "BestEffort"),
    ([{"requests": {"cpu": "100m"}}], "Burstable"),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1Gi"}}], "Guaranteed"),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {"limits": {"cpu": "1"}}], "Burstable"),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}], "Burstable"),
    ([{"requests": {"nvidia.com/gpu": "1"}}], "BestEffort"),
])
def test_qos_class(resources: list[dict[str, Any]], expected: str) -> None:
    containers = [{"name": f"c{i}", "image": "x", "resources": r} for i, r in enumerate(resources)]
    assert qos_class({"containers": containers}) == expected


def test_probes_handlers_env_and_volumes() -> None:
    container = {
        "name": "a", "image": "x",
        "ports": [{"containerPort": 80}],
        "livenessProbe": {"httpGet": {"port": 80}},
        "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5},
        "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}},
        "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}],
    }
    volumes = [{"name": "scratch"}, {"name": "s", "secret": {"secretName": "s"}},
               {"name": "c", "configMap": {"name": "c", "defaultMode": 256}}, {"name": "h", "hostPath": {"path": "/x"}}]
    spec = defaulted("v1", "Pod", pod(containers=[container], volumes=volumes))["spec"]
    c = spec["containers"][0]
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                  "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["readinessProbe"]["periodSeconds"] == 5
    assert c["readinessProbe"]["grpc"] == {"port": 9000, "service": ""}
    assert c["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/stop", "scheme": "HTTP"}
    assert c["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
    assert c["env"][1]["valueFrom"]["resourceFieldRef"] == {"resource": "limits.memory", "divisor": "0"}
    assert spec["volumes"] == [
        {"name": "scratch", "emptyDir": {}},
        {"name": "s", "secret": {"secretName": "s", "defaultMode": 420}},
        {"name": "c", "configMap": {"name": "c", "defaultMode": 256}},
        {"name": "h", "hostPath": {"path": "/x", "type": ""}},
    ]


def test_host_network_pods_get_host_ports() -> None:
    spec = defaulted("v1", "Pod", pod(hostNetwork=True, containers=[
        {"name": "a", "image": "x", "ports": [{"containerPort": 8080}]}]))["spec"]
    assert spec["containers"][0]["ports"][0]["hostPort"] == 8080


def test_defaults_are_idempotent() -> None:
    for api_version, kind, obj in (("v1", "Pod", pod()), ("apps/v1", "Deployment", kubectl_create_deployment())):
        once = defaulted(api_version, kind, obj)
        assert defaulted(api_version, kind, once) == once


def kubectl_create_service(kind: str = "clusterip", **spec: Any) -> dict[str, Any]:
    """What `kubectl create service clusterip web --tcp=80:8080` sends."""
    base = {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "web"}, "type": {"clusterip": "ClusterIP", "nodeport": "NodePort",
                                                 "loadbalancer": "LoadBalancer"}[kind]}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {**base, **spec}, "status": {"loadBalancer": {}}}


def test_cluster_ip_service_defaults() -> None:
    spec = defaulted("v1", "Service", kubectl_create_service())["spec"]
    assert spec == {
        "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        "selector": {"app": "web"}, "type": "ClusterIP", "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"],
    }


def test_service_ports_protocol_and_target_port_and_type() -> None:
    raw = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}}
    obj = defaulted("v1", "Service", raw)
    assert obj["spec"]["type"] == "ClusterIP"
    assert obj["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80},
                                    {"port": 53, "protocol": "UDP", "targetPort": "dns"}]
    assert obj["status"] == {"loadBalancer": {}}


def test_node_port_and_load_balancer_services() -> None:
    node_port = defaulted("v1", "Service", kubectl_create_service("nodeport"))["spec"]
    assert node_port["externalTrafficPolicy"] == "Cluster"
    assert "allocateLoadBalancerNodePorts" not in node_port
    balancer = defaulted("v1", "Service", kubectl_create_service("loadbalancer"))["spec"]
    assert balancer["externalTrafficPolicy"] == "Cluster"
    assert balancer["allocateLoadBalancerNodePorts"] is True


def test_external_name_service_gets_no_ip_fields() -> None:
    raw = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
           "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    spec = defaulted("v1", "Service", raw)["spec"]
    assert spec == {"type": "ExternalName", "externalName": "db.example.com", "sessionAffinity": "None"}


def test_client_ip_affinity_and_headless_services() -> None:
    sticky = defaulted("v1", "Service", kubectl_create_service(sessionAffinity="ClientIP"))["spec"]
    assert sticky["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    headless = defaulted("v1", "Service", kubectl_create_service(clusterIP="None"))["spec"]
    assert headless["clusterIPs"] == ["None"]
    assert headless["ipFamilyPolicy"] == "SingleStack"
    bare = kubectl_create_service(clusterIP="None")
    del bare["spec"]["selector"]
    assert defaulted("v1", "Service", bare)["spec"]["ipFamilyPolicy"] == "RequireDualStack"


def test_namespace_defaults() -> None:
    obj = defaulted("v1", "Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"},
                                        "spec": {}, "status": {}})
    assert obj["metadata"]["labels"] == {"kubernetes.io/metadata.name": "demo"}
    assert obj["spec"] == {"finalizers": ["kubernetes"]}
    assert obj["status"] == {"phase": "Active"}


def test_finalized_namespace_is_not_given_its_finalizer_back() -> None:
    obj = defaulted("v1", "Namespace", {"metadata": {"name": "demo"}, "spec": {"finalizers": []},
                                        "status": {"phase": "Terminating"}})
    assert obj["spec"]["finalizers"] == []
    assert obj["status"]["phase"] == "Terminating"


def test_secret_endpoints_slices_and_nodes() -> None:
    assert defaulted("v1", "Secret", {"metadata": {"name": "s"}, "data": {"a": "Yg=="}})["type"] == "Opaque"
    ep = defaulted("v1", "Endpoints", {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    slice_ = defaulted("discovery.k8s.io/v1", "EndpointSlice", {"addressType": "IPv4", "ports": [{"port": 80}]})
    assert slice_["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
    node = defaulted("v1", "Node", {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4", "memory": "8192Mi"}}})
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}
    assert "spec" not in defaulted("v1", "ConfigMap", {"metadata": {"name": "c"}})

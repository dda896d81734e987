"""Defaults of the non-pod kinds: apps/v1 workloads, Service, Namespace, Secret, Endpoints,
EndpointSlice, Node and core Event."""

from __future__ import annotations

from kubelite.objects.defaults.podspec import Obj, canonicalize_resource_list, default_pod_spec, items_of

CLIENT_IP_TIMEOUT = 10800


def default_template(obj: Obj) -> None:
    template = _sub(obj, "spec", "template")
    if template is not None and isinstance(template.get("spec"), dict):
        default_pod_spec(template["spec"])


def _sub(obj: Obj, *keys: str) -> Obj | None:
    for key in keys:
        value = obj.get(key)
        if not isinstance(value, dict):
            return None
        obj = value
    return obj


def default_deployment(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        if spec.get("replicas") is None:
            spec["replicas"] = 1
        _deployment_strategy(spec)
        if spec.get("revisionHistoryLimit") is None:
            spec["revisionHistoryLimit"] = 10
        if spec.get("progressDeadlineSeconds") is None:
            spec["progressDeadlineSeconds"] = 600
    default_template(obj)
    obj.setdefault("status", {})


def _deployment_strategy(spec: Obj) -> None:
    strategy = spec.get("strategy")
    if not isinstance(strategy, dict):
        strategy = spec["strategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            rolling = strategy["rollingUpdate"] = {}
        for key in ("maxUnavailable", "maxSurge"):
            if rolling.get(key) is None:
                rolling[key] = "25%"


def default_replica_set(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict) and spec.get("replicas") is None:
        spec["replicas"] = 1
    default_template(obj)
    status = obj.setdefault("status", {})
    if isinstance(status, dict):
        status.setdefault("replicas", 0)


def default_service(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _session_affinity(spec)
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in items_of(spec.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    _traffic_policies(spec)
    _ip_families(spec)
    status = obj.setdefault("status", {})
    if isinstance(status, dict):
        status.setdefault("loadBalancer", {})


def _session_affinity(spec: Obj) -> None:
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client = config.get("clientIP") if isinstance(config, dict) else None
        if not isinstance(client, dict) or client.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": CLIENT_IP_TIMEOUT}}


def _traffic_policies(spec: Obj) -> None:
    kind = spec["type"]
    external = kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and bool(spec.get("externalIPs")))
    if external and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if kind in ("NodePort", "LoadBalancer", "ClusterIP") and spec.get("internalTrafficPolicy") is None:
        spec["internalTrafficPolicy"] = "Cluster"
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True


def _ip_families(spec: Obj) -> None:
    """Single-stack IPv4, as the allocator of a single-stack cluster fills these in."""
    if spec["type"] == "ExternalName":
        return
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    if spec.get("ipFamilyPolicy") is None:
        headless_without_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
        spec["ipFamilyPolicy"] = "RequireDualStack" if headless_without_selector else "SingleStack"
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = ["IPv4"]


def default_namespace(obj: Obj) -> None:
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and metadata.get("name"):
        labels = metadata.get("labels")
        if not isinstance(labels, dict):
            labels = metadata["labels"] = {}
        labels["kubernetes.io/metadata.name"] = metadata["name"]
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    # only a namespace that never had finalizers gets one: the finalize subresource empties the list
    if spec.get("finalizers") is None:
        spec["finalizers"] = ["kubernetes"]
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Active"


def default_secret(obj: Obj) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"


def default_endpoints(obj: Obj) -> None:
    for subset in items_of(obj.get("subsets")):
        for port in items_of(subset.get("ports")):
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def default_endpoint_slice(obj: Obj) -> None:
    for port in items_of(obj.get("ports")):
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


def default_node(obj: Obj) -> None:
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    for field in ("capacity", "allocatable"):
        if isinstance(status.get(field), dict):
            canonicalize_resource_list(status[field])
    if status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


def default_core_event(obj: Obj) -> None:
    # plain string fields without omitempty, which upstream always serializes
    for key in ("reportingComponent", "reportingInstance"):
        if obj.get(key) is None:
            obj[key] = ""

"""What a new Pod gets beyond its PodSpec defaults: `SetDefaults_Pod`, the admission plugins a
default kube-apiserver runs (ServiceAccount, Priority, DefaultTolerationSeconds) and the status the
pod strategy starts it with (phase Pending, QoS class).

Everything here only fills what is missing, so running it again on an update changes nothing.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from kubelite.objects.defaults.podspec import Obj, canonicalize_resource_list
from kubelite.objects.validation.quantity import try_parse

DEFAULT_TOLERATION_SECONDS = 300
NOT_READY, UNREACHABLE = "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"
SYSTEM_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
QOS_RESOURCES = ("cpu", "memory")


def default_pod(pod: Obj) -> None:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    _requests_from_limits(spec)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        _host_network_ports(spec)
    _service_account(spec)
    _priority(spec)
    _default_tolerations(spec)
    _status(pod, spec)


def _containers(spec: Obj, *fields: str) -> list[Obj]:
    out: list[Obj] = []
    for field in fields:
        value = spec.get(field)
        out += [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []
    return out


def _requests_from_limits(spec: Obj) -> None:
    for container in _containers(spec, "containers", "initContainers"):
        resources = container.get("resources")
        if not isinstance(resources, dict) or not isinstance(resources.get("limits"), dict):
            continue
        requests = resources.setdefault("requests", {})
        if isinstance(requests, dict):
            for name, value in resources["limits"].items():
                requests.setdefault(name, value)
            canonicalize_resource_list(requests)


def _host_network_ports(spec: Obj) -> None:
    for container in _containers(spec, "containers", "initContainers"):
        for port in container.get("ports") or []:
            if isinstance(port, dict) and not port.get("hostPort"):
                port["hostPort"] = port.get("containerPort")


def _service_account(spec: Obj) -> None:
    # the ServiceAccount admission plugin; `serviceAccount` is v1's deprecated mirror of the name
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    spec["serviceAccount"] = spec["serviceAccountName"]


def _priority(spec: Obj) -> None:
    if spec.get("priority") is None:
        spec["priority"] = SYSTEM_PRIORITIES.get(str(spec.get("priorityClassName") or ""), 0)
    if spec.get("preemptionPolicy") is None:
        spec["preemptionPolicy"] = "PreemptLowerPriority"


def _default_tolerations(spec: Obj) -> None:
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = spec["tolerations"] = []
    if not isinstance(tolerations, list):
        return
    for key in (NOT_READY, UNREACHABLE):
        if not any(_tolerates_no_execute(t, key) for t in tolerations if isinstance(t, dict)):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})


def _tolerates_no_execute(toleration: Obj, key: str) -> bool:
    # the plugin looks at key and effect only, not at operator or value
    return toleration.get("key") in (None, "", key) and toleration.get("effect") in (None, "", "NoExecute")


def _status(pod: Obj, spec: Obj) -> None:
    status = pod.get("status")
    if not isinstance(status, dict):
        status = pod["status"] = {}
    status.setdefault("phase", "Pending")
    if not status.get("qosClass"):
        status["qosClass"] = qos_class(spec)


def qos_class(spec: Obj) -> str:
    """Upstream's `ComputePodQOS`: BestEffort, Burstable or Guaranteed."""
    pod_level = spec.get("resources")
    if isinstance(pod_level, dict) and (pod_level.get("requests") or pod_level.get("limits")):
        return _qos_of([pod_level])
    return _qos_of([c.get("resources") for c in _containers(spec, "containers", "initContainers")])


def _qos_of(resource_sets: list[Any]) -> str:
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    for resources in resource_sets:
        resources = resources if isinstance(resources, dict) else {}
        _add_positive(resources.get("requests"), requests)
        found = _add_positive(resources.get("limits"), limits)
        if not set(QOS_RESOURCES) <= found:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and len(requests) == len(limits) and all(limits.get(k) == v for k, v in requests.items()):
        return "Guaranteed"
    return "Burstable"


def _add_positive(values: Any, total: dict[str, Fraction]) -> set[str]:
    found: set[str] = set()
    for name in QOS_RESOURCES:
        qty = try_parse(values.get(name)) if isinstance(values, dict) and name in values else None
        if qty is not None and qty.value > 0:
            total[name] = total.get(name, Fraction(0)) + qty.value
            found.add(name)
    return found

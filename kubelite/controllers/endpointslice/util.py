"""Pure helpers shared by the Endpoints and EndpointSlice controllers (upstream's
k8s.io/endpointslice/util): which pods back a Service, with which addresses and ports, and which
Services a pod change concerns.

Everything here is a function of API objects (plain dicts) only; nothing reads caches or talks to
the API, so the controllers' decisions can be tested without a server.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
LABEL_HEADLESS = "service.kubernetes.io/headless"
LABEL_SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
LABEL_ZONE = "topology.kubernetes.io/zone"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"

# informer index names; prefixed so another controller's index of the same name cannot clash
NAMESPACE_INDEX = "endpoints.kubelite.io/namespace"
NODE_INDEX = "endpoints.kubelite.io/node-name"


def _spec(obj: Obj | None) -> Obj:
    return (obj or {}).get("spec") or {}


def _status(obj: Obj | None) -> Obj:
    return (obj or {}).get("status") or {}


def _meta(obj: Obj | None) -> Obj:
    return (obj or {}).get("metadata") or {}


def by_namespace(obj: Obj) -> list[str]:
    return [str(_meta(obj).get("namespace") or "")]


def by_node_name(pod: Obj) -> list[str]:
    node = _spec(pod).get("nodeName")
    return [str(node)] if node else []


# ----- services ----------------------------------------------------------------------------------

def selects_pods(service: Obj) -> bool:
    """Whether a controller manages this Service's endpoints: it has a selector and is no
    ExternalName. An empty selector counts as none, as it does after a round trip through
    upstream's storage."""
    spec = _spec(service)
    return spec.get("type") != "ExternalName" and bool(spec.get("selector"))


def selector_matches(selector: Obj | None, labels: Obj | None) -> bool:
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(key) == value for key, value in selector.items())


def is_headless(service: Obj) -> bool:
    cluster_ip = _spec(service).get("clusterIP")
    return not cluster_ip or cluster_ip == "None"


def address_families(service: Obj) -> list[str]:
    """IPv4/IPv6 in the service's family order (spec.ipFamilies, else the clusterIP's family,
    else both for a headless service), as upstream's getAddressTypesForService."""
    spec = _spec(service)
    families = [f for f in spec.get("ipFamilies") or [] if f in ("IPv4", "IPv6")]
    if families:
        return list(dict.fromkeys(families))
    if not is_headless(service):
        return [_family(str(spec["clusterIP"]))]
    return ["IPv4", "IPv6"]


def _family(ip: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return "IPv4"


# ----- pods --------------------------------------------------------------------------------------

def is_pod_ready(pod: Obj) -> bool:
    for condition in _status(pod).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def is_terminal(pod: Obj) -> bool:
    return _status(pod).get("phase") in ("Succeeded", "Failed")


def is_terminating(pod: Obj) -> bool:
    return bool(_meta(pod).get("deletionTimestamp"))


def pod_ips(pod: Obj) -> list[str]:
    status = _status(pod)
    ips = [str(entry.get("ip")) for entry in status.get("podIPs") or [] if entry.get("ip")]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    return ips


def pod_ips_of_family(pod: Obj, family: str) -> list[str]:
    return [ip for ip in pod_ips(pod) if _family(ip) == family]


def should_include(pod: Obj, *, include_terminating: bool) -> bool:
    """Terminal pods and pods without an IP never back a Service; terminating ones only when
    asked (EndpointSlices always list them, Endpoints only with publishNotReadyAddresses)."""
    if is_terminal(pod) or not pod_ips(pod):
        return False
    return include_terminating or not is_terminating(pod)


def should_set_hostname(pod: Obj, service: Obj) -> bool:
    spec = _spec(pod)
    return bool(spec.get("hostname")) and spec.get("subdomain") == _meta(service).get("name") \
        and _meta(pod).get("namespace") == _meta(service).get("namespace")


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod's port for a service port: a numeric targetPort as is, a named one looked up in
    the containers' (and restartable init containers') ports of the same protocol."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    spec = _spec(pod)
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in [*(spec.get("containers") or []), *sidecars]:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


# ----- which services a pod event concerns -------------------------------------------------------

def service_key(service: Obj) -> str:
    meta = _meta(service)
    return f"{meta.get('namespace')}/{meta.get('name')}"


def pod_memberships(services: Iterable[Obj], pod: Obj) -> set[str]:
    labels = _meta(pod).get("labels")
    return {service_key(s) for s in services if selector_matches(_spec(s).get("selector"), labels)}


def _endpoint_relevant_change(old: Obj, new: Obj) -> bool:
    if _meta(old).get("deletionTimestamp") != _meta(new).get("deletionTimestamp"):
        return True
    if is_pod_ready(old) != is_pod_ready(new) or pod_ips(old) != pod_ips(new):
        return True
    # phase matters here (terminal pods leave), unlike upstream which waits for the next change
    return _status(old).get("phase") != _status(new).get("phase") or \
        _spec(old).get("nodeName") != _spec(new).get("nodeName")


def _membership_change(old: Obj, new: Obj) -> bool:
    old_spec, new_spec = _spec(old), _spec(new)
    return _meta(old).get("labels") != _meta(new).get("labels") or \
        old_spec.get("hostname") != new_spec.get("hostname") or \
        old_spec.get("subdomain") != new_spec.get("subdomain")


def services_to_update(services: list[Obj], old: Obj, new: Obj) -> set[str]:
    """Service keys a pod update may affect: its services if its endpoint changed; if its labels
    changed too, the services it joined or left (all of both sets when the endpoint changed)."""
    if _meta(old).get("resourceVersion") == _meta(new).get("resourceVersion"):
        return set()
    pod_changed, labels_changed = _endpoint_relevant_change(old, new), _membership_change(old, new)
    if not pod_changed and not labels_changed:
        return set()
    current = pod_memberships(services, new)
    if not labels_changed:
        return current
    previous = pod_memberships(services, old)
    return current | previous if pod_changed else current ^ previous

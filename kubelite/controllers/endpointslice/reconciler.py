"""Planning EndpointSlice changes for one Service (upstream's endpointslice Reconciler), as a pure
function: (service, its pods, its existing slices, node lookup) -> slices to create/update/delete.

Desired endpoints are grouped by address family and then by their resolved port set (pods whose
named targetPort resolves to different numbers need different slices). Churn is kept low as
upstream does: an endpoint is identified by addresses + hostname + pod, so a readiness flip updates
it in place; slices that lost endpoints are refilled first, leftovers go into the unchanged slice
closest to full, and only then are new slices made (at most `max_per_slice` endpoints each). A
slice that would be deleted while another is created is updated instead. A Service with no
endpoints keeps one empty placeholder slice.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubelite.controllers.endpointslice import util

Obj = dict[str, Any]
PortKey = tuple[tuple[str, int, str, str], ...]
EndpointKey = tuple[tuple[str, ...], str, str, str]

MAX_ENDPOINTS_PER_SLICE = 100


@dataclass
class Plan:
    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    missing_nodes: list[str] = field(default_factory=list)  # pods left out: their node is unknown

    def extend(self, other: Plan) -> None:
        self.create += other.create
        self.update += other.update
        self.delete += other.delete
        self.missing_nodes += other.missing_nodes


# ----- keys and comparisons ----------------------------------------------------------------------

def port_key(ports: list[Obj] | None) -> PortKey:
    return tuple(sorted((str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP"),
                         str(p.get("appProtocol") or "")) for p in ports or []))


def endpoint_key(endpoint: Obj) -> EndpointKey:
    ref = endpoint.get("targetRef") or {}
    return (tuple(sorted(endpoint.get("addresses") or [])), str(endpoint.get("hostname") or ""),
            str(ref.get("namespace") or ""), str(ref.get("name") or ""))


def _ref_identity(ref: Obj | None) -> tuple[Any, ...]:
    ref = ref or {}
    return tuple(ref.get(k) for k in ("kind", "namespace", "name", "uid", "apiVersion", "fieldPath"))


def same_beyond_key(a: Obj, b: Obj) -> bool:
    """Equal in what `endpoint_key` leaves out (target ref resourceVersion ignored)."""
    conditions_a, conditions_b = a.get("conditions") or {}, b.get("conditions") or {}
    return a.get("nodeName") == b.get("nodeName") and a.get("zone") == b.get("zone") and \
        all(conditions_a.get(c) == conditions_b.get(c) for c in ("ready", "serving", "terminating")) and \
        _ref_identity(a.get("targetRef")) == _ref_identity(b.get("targetRef"))


def owned_by(slice_: Obj, service: Obj) -> bool:
    uid = (service.get("metadata") or {}).get("uid")
    return any(ref.get("uid") == uid and ref.get("kind") == "Service" and ref.get("apiVersion") == "v1"
               for ref in (slice_.get("metadata") or {}).get("ownerReferences") or [])


# ----- desired objects ---------------------------------------------------------------------------

def slice_labels(service: Obj) -> dict[str, str]:
    """The service's labels, minus the reserved ones, plus service-name, managed-by, headless."""
    meta = service.get("metadata") or {}
    reserved = (util.LABEL_SERVICE_NAME, util.LABEL_MANAGED_BY, util.LABEL_HEADLESS)
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in reserved}
    if util.is_headless(service):
        labels[util.LABEL_HEADLESS] = ""
    labels[util.LABEL_SERVICE_NAME] = str(meta.get("name"))
    labels[util.LABEL_MANAGED_BY] = util.CONTROLLER_NAME
    return labels


def new_slice(service: Obj, ports: list[Obj], family: str) -> Obj:
    meta = service.get("metadata") or {}
    name = str(meta.get("name"))
    owner = {"apiVersion": "v1", "kind": "Service", "name": name, "uid": meta.get("uid"),
             "controller": True, "blockOwnerDeletion": True}
    # `name-` unless that is no longer a valid name prefix; the server adds the random suffix
    prefix = f"{name}-" if len(name) < 253 else name
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": prefix, "namespace": meta.get("namespace"),
                         "labels": slice_labels(service), "ownerReferences": [owner]},
            "addressType": family, "ports": copy.deepcopy(ports), "endpoints": []}


def endpoint_ports(service: Obj, pod: Obj) -> list[Obj]:
    ports = []
    for service_port in (service.get("spec") or {}).get("ports") or []:
        number = util.find_port(pod, service_port)
        if number is None:
            continue
        port = {"name": service_port.get("name") or "", "port": number,
                "protocol": service_port.get("protocol") or "TCP"}
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def pod_endpoint(pod: Obj, node: Obj | None, service: Obj, family: str) -> Obj:
    """A pod as an endpoint: serving is readiness; ready is serving and not terminating (or
    always, with publishNotReadyAddresses)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    serving, terminating = util.is_pod_ready(pod), util.is_terminating(pod)
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    endpoint: Obj = {
        "addresses": util.pod_ips_of_family(pod, family),
        "conditions": {"ready": publish or (serving and not terminating), "serving": serving,
                       "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta.get("name"),
                      "uid": meta.get("uid")},
    }
    if spec.get("nodeName"):
        endpoint["nodeName"] = spec["nodeName"]
    zone = ((node or {}).get("metadata") or {}).get("labels", {}).get(util.LABEL_ZONE)
    if zone:
        endpoint["zone"] = zone
    if util.should_set_hostname(pod, service):
        endpoint["hostname"] = spec["hostname"]
    return endpoint


# ----- planning ----------------------------------------------------------------------------------

def reconcile(service: Obj, pods: list[Obj], existing: list[Obj], *, node_of: Callable[[str], Obj | None],
              max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> Plan:
    families = util.address_families(service)
    plan = Plan(delete=[s for s in existing if s.get("addressType") not in families])
    for family in families:
        mine = [s for s in existing if s.get("addressType") == family]
        plan.extend(_reconcile_family(service, pods, mine, family, node_of, max_per_slice))
    return plan


def _desired(service: Obj, pods: list[Obj], family: str, node_of: Callable[[str], Obj | None],
             ) -> tuple[dict[PortKey, dict[EndpointKey, Obj]], dict[PortKey, list[Obj]], list[str]]:
    endpoints: dict[PortKey, dict[EndpointKey, Obj]] = {}
    ports_of: dict[PortKey, list[Obj]] = {}
    missing: list[str] = []
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    for pod in pods:
        if not util.should_include(pod, include_terminating=True):
            continue
        ports = endpoint_ports(service, pod)
        key = port_key(ports)
        bucket = endpoints.setdefault(key, {})
        ports_of.setdefault(key, ports)
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        node = node_of(node_name) if node_name else None
        if node is None and not publish:
            missing.append(f"{pod['metadata'].get('name')} (node {node_name or '<none>'})")
            continue
        endpoint = pod_endpoint(pod, node, service, family)
        if endpoint["addresses"]:
            bucket[endpoint_key(endpoint)] = endpoint
    return endpoints, ports_of, missing


def _reconcile_family(service: Obj, pods: list[Obj], existing: list[Obj], family: str,
                      node_of: Callable[[str], Obj | None], max_per_slice: int) -> Plan:
    desired, ports_of, missing = _desired(service, pods, family, node_of)
    plan = Plan(missing_nodes=missing)
    by_ports: dict[PortKey, list[Obj]] = {}
    for slice_ in existing:
        if owned_by(slice_, service):
            by_ports.setdefault(port_key(slice_.get("ports")), []).append(slice_)
        else:
            plan.delete.append(slice_)
    for key, wanted in desired.items():
        plan.extend(_by_port_mapping(service, by_ports.get(key, []), wanted, ports_of[key], family,
                                     max_per_slice))
    for key, slices in by_ports.items():
        if key not in desired:
            plan.delete += slices
    if len(existing) == len(plan.delete) and not plan.create:
        _keep_placeholder(service, family, plan)
    _recycle_deletions(service, plan)
    return plan


def _keep_placeholder(service: Obj, family: str, plan: Plan) -> None:
    placeholder = new_slice(service, [], family)
    if len(plan.delete) == 1 and _is_placeholder(plan.delete[0], placeholder):
        plan.delete.clear()  # it already exists: do not delete and recreate it
    else:
        plan.create.append(placeholder)


def _is_placeholder(slice_: Obj, placeholder: Obj) -> bool:
    return not slice_.get("endpoints") and not slice_.get("ports") and \
        slice_.get("addressType") == placeholder["addressType"] and \
        ((slice_.get("metadata") or {}).get("labels") or {}) == placeholder["metadata"]["labels"]


def _recycle_deletions(service: Obj, plan: Plan) -> None:
    """Turn create+delete pairs into updates of the slice that would be deleted."""
    keep: list[Obj] = []
    for doomed in plan.delete:
        if plan.create and doomed.get("addressType") == plan.create[-1]["addressType"] and owned_by(doomed, service):
            fresh = plan.create.pop()
            fresh["metadata"] = {**doomed["metadata"], "labels": fresh["metadata"]["labels"],
                                 "ownerReferences": fresh["metadata"]["ownerReferences"]}
            fresh["metadata"].pop("generateName", None)
            plan.update.append(fresh)
        else:
            keep.append(doomed)
    plan.delete = keep


def _by_port_mapping(service: Obj, existing: list[Obj], desired: dict[EndpointKey, Obj], ports: list[Obj],
                     family: str, max_per_slice: int) -> Plan:
    labels = slice_labels(service)
    plan, unchanged, updated = Plan(), [], []
    for slice_ in existing:
        kept, changed = [], False
        for endpoint in slice_.get("endpoints") or []:
            wanted = desired.pop(endpoint_key(endpoint), None)
            if wanted is not None:
                kept.append(wanted)
                changed = changed or not same_beyond_key(wanted, endpoint)
        current_labels = (slice_.get("metadata") or {}).get("labels") or {}
        if changed or len(kept) != len(slice_.get("endpoints") or []):
            if kept:
                updated.append(_revised(slice_, endpoints=kept, labels=labels))
            else:
                plan.delete.append(slice_)
        elif current_labels != labels:
            updated.append(_revised(slice_, endpoints=kept, labels=labels))
        else:
            unchanged.append(slice_)
    for slice_ in sorted(updated, key=lambda s: -len(s["endpoints"])):
        _fill(slice_, desired, max_per_slice)
    while desired:
        target = _closest_to_full(unchanged, len(desired), max_per_slice) if len(desired) < max_per_slice else None
        if target is None:
            target = new_slice(service, ports, family)
            plan.create.append(target)
        else:
            unchanged.remove(target)
            target = _revised(target, endpoints=list(target.get("endpoints") or []), labels=labels)
            updated.append(target)
        _fill(target, desired, max_per_slice)
    plan.update = updated
    return plan


def _revised(slice_: Obj, *, endpoints: list[Obj], labels: dict[str, str]) -> Obj:
    revised = copy.deepcopy(slice_)
    revised["endpoints"] = endpoints
    revised.setdefault("metadata", {})["labels"] = dict(labels)
    return revised


def _fill(slice_: Obj, desired: dict[EndpointKey, Obj], max_per_slice: int) -> None:
    while desired and len(slice_["endpoints"]) < max_per_slice:
        slice_["endpoints"].append(desired.pop(next(iter(desired))))


def _closest_to_full(slices: list[Obj], count: int, max_per_slice: int) -> Obj | None:
    best, best_room = None, max_per_slice
    for slice_ in slices:
        room = max_per_slice - (count + len(slice_.get("endpoints") or []))
        if 0 <= room < best_room:
            best, best_room = slice_, room
            if room == 0:
                break
    return best

"""Service validation (`ValidateService`, `ValidateServiceUpdate`).

`clusterIPs` is read as the registry normalizes it before validating: when only `clusterIP` is
given, `clusterIPs` is `[clusterIP]`. NodePorts are checked against the default range, as the
allocator would report it.
"""

from __future__ import annotations

from typing import Any

from kubelite.objects.errors import Cause
from kubelite.objects.validation import formats as fmt
from kubelite.objects.validation.access import Obj, as_int, as_list, as_map, as_str, m, maps
from kubelite.objects.validation.container import validate_port_num_or_name, validate_protocol
from kubelite.objects.validation.fielderr import (
    GoStruct,
    child,
    duplicate,
    forbidden,
    index,
    invalid,
    invalid_each,
    not_supported,
    required,
)
from kubelite.objects.validation.meta import (
    name_is_dns1035_label,
    validate_label_name,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_RANGE = (30000, 32767)
MAX_AFFINITY_SECONDS = 86400


def cluster_ips(spec: Obj) -> list[str]:
    ips = [as_str(ip) for ip in as_list(spec.get("clusterIPs"))]
    ip = as_str(spec.get("clusterIP"))
    return ips if ips or not ip else [ip]


def is_headless(spec: Obj) -> bool:
    return cluster_ips(spec) == ["None"]


def externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and bool(as_list(spec.get("externalIPs"))))


def validate_service(obj: Obj, old: Obj | None) -> list[Cause]:
    meta, spec = m(obj, "metadata"), m(obj, "spec")
    errs: list[Cause] = []
    if old is not None:
        errs += validate_object_meta_update(meta, m(old, "metadata"))
        errs += _cluster_ip_update(spec, m(old, "spec"))
    errs += validate_object_meta(meta, True, name_is_dns1035_label)
    if not as_list(spec.get("ports")) and not is_headless(spec) and spec.get("type") != "ExternalName":
        errs.append(required("spec.ports"))
    errs += _type_specific(spec)
    errs += _ports(spec)
    errs += validate_labels(spec.get("selector"), "spec.selector")
    errs += _session_affinity(spec)
    errs += _cluster_ips(spec)
    errs += _external_ips(spec)
    errs += _type(spec)
    return errs + _node_ports(spec) + _traffic_policies(spec)


def _type_specific(spec: Obj) -> list[Cause]:
    kind, ips = spec.get("type"), cluster_ips(spec)
    if kind in ("LoadBalancer", "NodePort") and is_headless(spec):
        return [invalid("spec.clusterIPs[0]", ips[0], f"may not be set to 'None' for {kind} services")]
    if kind != "ExternalName":
        return []
    errs = [forbidden("spec.clusterIPs", "may not be set for ExternalName services")] if ips else []
    if as_list(spec.get("ipFamilies")):
        errs.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
    if spec.get("ipFamilyPolicy") is not None:
        errs.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
    cname = as_str(spec.get("externalName")).removesuffix(".")
    if not cname:
        return errs + [required("spec.externalName")]
    return errs + invalid_each("spec.externalName", cname, fmt.is_dns1123_subdomain(cname))


def _ports(spec: Obj) -> list[Cause]:
    ports, errs, names = maps(spec.get("ports")), [], set()
    for i, port in enumerate(ports):
        path, name = index("spec.ports", i), as_str(port.get("name"))
        if len(ports) > 1 and not name:
            errs.append(required(child(path, "name")))
        elif name:
            errs += invalid_each(child(path, "name"), name, fmt.is_dns1123_label(name))
            if name in names:
                errs.append(duplicate(child(path, "name"), name))
            names.add(name)
        number = as_int(port.get("port")) or 0
        errs += invalid_each(child(path, "port"), number, fmt.is_valid_port_num(number))
        errs += validate_protocol(port.get("protocol"), child(path, "protocol"))
        errs += validate_port_num_or_name(port.get("targetPort"), child(path, "targetPort"))
        if port.get("appProtocol") is not None:
            errs += validate_label_name(as_str(port.get("appProtocol")), child(path, "appProtocol"))
    return errs


def _session_affinity(spec: Obj) -> list[Cause]:
    affinity = spec.get("sessionAffinity")
    if not affinity:
        return [required("spec.sessionAffinity")]
    if affinity not in ("ClientIP", "None"):
        return [not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))]
    config = spec.get("sessionAffinityConfig")
    if affinity == "None":
        if config is not None:
            return [forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")]
        return []
    return _client_ip_config(config)


def _client_ip_config(config: Any) -> list[Cause]:
    path, detail = "spec.sessionAffinityConfig", "when session affinity type is ClientIP"
    if not isinstance(config, dict):
        return [required(path, detail)]
    if not isinstance(config.get("clientIP"), dict):
        return [required(child(path, "clientIP"), detail)]
    seconds = as_int(as_map(config["clientIP"]).get("timeoutSeconds"))
    if seconds is None:
        return [required(child(path, "clientIP", "timeoutSeconds"), detail)]
    if not 0 < seconds <= MAX_AFFINITY_SECONDS:
        return [invalid(child(path, "clientIP", "timeoutSeconds"), seconds,
                        f"must be greater than 0 and less than {MAX_AFFINITY_SECONDS}")]
    return []


def _cluster_ips(spec: Obj) -> list[Cause]:
    if spec.get("type") == "ExternalName":
        return []
    ips, errs = cluster_ips(spec), []
    seen: set[str] = set()
    for i, family in enumerate(as_list(spec.get("ipFamilies"))):
        path = index("spec.ipFamilies", i)
        if family not in ("IPv4", "IPv6"):
            errs.append(not_supported(path, family, ("IPv4", "IPv6")))
        if family in seen:
            errs.append(duplicate(path, family))
        seen.add(as_str(family))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in ("PreferDualStack", "RequireDualStack", "SingleStack"):
        errs.append(not_supported("spec.ipFamilyPolicy", policy, ("PreferDualStack", "RequireDualStack", "SingleStack")))
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                errs.append(invalid("spec.clusterIPs", ips, "'None' must be the first and only value"))
            continue
        errs += fmt.validate_ip(index("spec.clusterIPs", i), ip)
    if len(ips) > 2:
        errs.append(invalid("spec.clusterIPs", ips, "may only hold up to 2 values"))
    return errs


def _external_ips(spec: Obj) -> list[Cause]:
    errs: list[Cause] = []
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        errs += fmt.validate_ip(index("spec.externalIPs", i), as_str(ip))
    return errs


def _type(spec: Obj) -> list[Cause]:
    kind = spec.get("type")
    if not kind:
        return [required("spec.type")]
    if kind not in SERVICE_TYPES:
        return [not_supported("spec.type", kind, SERVICE_TYPES)]
    return []


def _node_ports(spec: Obj) -> list[Cause]:
    errs: list[Cause] = []
    seen_node: set[tuple[str, int]] = set()
    seen_port: set[tuple[str, int]] = set()
    for i, port in enumerate(maps(spec.get("ports"))):
        path, protocol = index("spec.ports", i), as_str(port.get("protocol"))
        node_port = as_int(port.get("nodePort")) or 0
        if node_port and spec.get("type") == "ClusterIP":
            errs.append(forbidden(child(path, "nodePort"), "may not be used when `type` is 'ClusterIP'"))
        elif node_port and not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
            errs.append(invalid(child(path, "nodePort"), node_port,
                                "provided port is not in the valid range. The range of valid ports is "
                                f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}"))
        if node_port and (protocol, node_port) in seen_node:
            errs.append(duplicate(child(path, "nodePort"), node_port))
        seen_node.add((protocol, node_port))
        key = (protocol, as_int(port.get("port")) or 0)
        if key in seen_port:
            # upstream reports its internal ServicePort struct, which has no json tags
            errs.append(duplicate(path, GoStruct(Name="", Protocol=key[0], AppProtocol=None, Port=key[1],
                                                 TargetPort=0, NodePort=0)))
        seen_port.add(key)
    return errs


def _traffic_policies(spec: Obj) -> list[Cause]:
    errs: list[Cause] = []
    kind = spec.get("type")
    if as_list(spec.get("loadBalancerSourceRanges")):
        if kind != "LoadBalancer":
            errs.append(forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"))
        for i, cidr in enumerate(as_list(spec.get("loadBalancerSourceRanges"))):
            errs += fmt.validate_cidr(index("spec.LoadBalancerSourceRanges", i), as_str(cidr).strip())
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer":
        errs.append(forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"))
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("allocateLoadBalancerNodePorts"))
    if spec.get("loadBalancerClass") is not None and kind != "LoadBalancer":
        errs.append(forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
    return errs + _external_traffic(spec) + _internal_traffic(spec)


def _external_traffic(spec: Obj) -> list[Cause]:
    policy = spec.get("externalTrafficPolicy")
    if not externally_accessible(spec):
        if policy:
            return [invalid("spec.externalTrafficPolicy", policy, "may only be set for externally-accessible services")]
        return []
    if not policy:
        return [required("spec.externalTrafficPolicy")]
    if policy not in ("Cluster", "Local"):
        return [not_supported("spec.externalTrafficPolicy", policy, ("Cluster", "Local"))]
    return []


def _internal_traffic(spec: Obj) -> list[Cause]:
    policy = spec.get("internalTrafficPolicy")
    if policy is None:
        return [required("spec.internalTrafficPolicy")] if spec.get("type") != "ExternalName" else []
    if policy not in ("Cluster", "Local"):
        return [not_supported("spec.internalTrafficPolicy", policy, ("Cluster", "Local"))]
    return []


def _cluster_ip_update(spec: Obj, old: Obj) -> list[Cause]:
    if "ExternalName" in (spec.get("type"), old.get("type")):
        return []
    new_ips, old_ips = _effective_ips(spec, old), cluster_ips(old)
    if is_headless(spec) and is_headless(old):
        return []
    if len(new_ips) == len(old_ips):
        return [invalid(index("spec.clusterIPs", i), new_ips, "may not change once set")
                for i, ip in enumerate(old_ips) if ip != new_ips[i]]
    if len(old_ips) > len(new_ips) and not new_ips:
        return [invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset")]
    if old_ips and new_ips and new_ips[0] != old_ips[0]:
        return [invalid("spec.clusterIPs[0]", new_ips, "may not change once set")]
    return []


def _effective_ips(spec: Obj, old: Obj) -> list[str]:
    """A changed `clusterIP` with untouched `clusterIPs` is read as a change of the first IP."""
    ips, ip = [as_str(i) for i in as_list(spec.get("clusterIPs"))], as_str(spec.get("clusterIP"))
    if ip and ips and ips == cluster_ips(old) and ip != ips[0]:
        return [ip] + ips[1:]
    return cluster_ips(spec)

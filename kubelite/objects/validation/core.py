"""Validation of the simple core/v1 kinds: ConfigMap, Secret, Namespace, Node, ServiceAccount,
Endpoints and Binding."""

from __future__ import annotations

import base64
import binascii
import json

from kubelite.objects.errors import Cause
from kubelite.objects.validation import formats as fmt
from kubelite.objects.validation.access import Obj, as_int, as_list, as_map, as_str, m, maps
from kubelite.objects.validation.container import validate_protocol
from kubelite.objects.validation.fielderr import (
    GoStruct,
    child,
    duplicate,
    forbidden,
    immutable,
    index,
    invalid,
    invalid_each,
    not_supported,
    required,
    too_long,
)
from kubelite.objects.validation.meta import (
    name_is_dns_label,
    name_is_dns_subdomain,
    validate_kube_finalizer_name,
    validate_label_name,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.objects.validation.pod import TAINT_EFFECTS, binding_target
from kubelite.objects.validation.quantity import try_parse

MAX_SECRET_SIZE = 1024 * 1024
_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def validate_config_map(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta_update(m(obj, "metadata"), m(old, "metadata")) if old is not None else []
    errs += _immutable_data(obj, old, ("data", "binaryData"))
    errs += validate_object_meta(m(obj, "metadata"), True, name_is_dns_subdomain)
    data, binary = as_map(obj.get("data")), as_map(obj.get("binaryData"))
    total = 0
    for key, value in data.items():
        errs += invalid_each(index("data", key), key, fmt.is_config_map_key(key))
        if key in binary:
            errs.append(invalid(index("data", key), key, "duplicate of key present in binaryData"))
        total += len(as_str(value).encode())
    for key, value in binary.items():
        errs += invalid_each(index("binaryData", key), key, fmt.is_config_map_key(key))
        total += _decoded_len(value)
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("[]", MAX_SECRET_SIZE))
    return errs


def _decoded_len(value: object) -> int:
    try:
        return len(base64.b64decode(as_str(value), validate=False))
    except (binascii.Error, ValueError):
        return 0


def _immutable_data(obj: Obj, old: Obj | None, fields: tuple[str, ...]) -> list[Cause]:
    if old is None or old.get("immutable") is not True:
        return []
    errs = [] if obj.get("immutable") is True else \
        [forbidden("immutable", "field is immutable when `immutable` is set")]
    return errs + [forbidden(f, "field is immutable when `immutable` is set")
                   for f in fields if as_map(obj.get(f)) != as_map(old.get(f))]


def validate_secret(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    if old is not None:
        errs += validate_object_meta_update(m(obj, "metadata"), m(old, "metadata"))
        if as_str(obj.get("type")) != as_str(old.get("type")):
            errs.append(immutable("type", as_str(obj.get("type"))))
        errs += _immutable_data(obj, old, ("data",))
    errs += validate_object_meta(m(obj, "metadata"), True, name_is_dns_subdomain)
    data, total = as_map(obj.get("data")), 0
    for key, value in data.items():
        errs += invalid_each(index("data", key), key, fmt.is_config_map_key(key))
        total += _decoded_len(value)
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("data", MAX_SECRET_SIZE))
    return errs + _secret_type(obj, data)


def _secret_type(obj: Obj, data: Obj) -> list[Cause]:
    kind = as_str(obj.get("type"))
    if kind == "kubernetes.io/service-account-token":
        name = as_str(m(obj, "metadata", "annotations").get("kubernetes.io/service-account.name"))
        return [] if name else [required("metadata.annotations[kubernetes.io/service-account.name]")]
    if kind == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        return [required("data[username]"), required("data[password]")]
    errs = [required(index("data", key)) for key in _SECRET_REQUIRED_KEYS.get(kind, ())
            if key not in data or (kind == "kubernetes.io/ssh-auth" and not data[key])]
    if kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson") and not errs:
        key = _SECRET_REQUIRED_KEYS[kind][0]
        errs += _json_payload(data[key], index("data", key))
    return errs


def _json_payload(value: object, path: str) -> list[Cause]:
    try:
        decoded = json.loads(base64.b64decode(as_str(value)))
    except (binascii.Error, ValueError) as exc:
        return [invalid(path, "<secret contents redacted>", str(exc))]
    if not isinstance(decoded, dict):
        return [invalid(path, "<secret contents redacted>",
                        "json: cannot unmarshal " + _json_kind(decoded) + " into Go value of type map[string]interface {}")]
    return []


def _json_kind(value: object) -> str:
    return {list: "array", str: "string", bool: "bool"}.get(type(value), "number")


def validate_namespace(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is not None:
        return validate_object_meta_update(m(obj, "metadata"), m(old, "metadata"))
    errs = validate_object_meta(m(obj, "metadata"), False, name_is_dns_label)
    for name in as_list(m(obj, "spec").get("finalizers")):
        errs += invalid_each("spec.finalizers", as_str(name), fmt.is_qualified_name(as_str(name)))
        errs += validate_kube_finalizer_name(as_str(name), "spec.finalizers")
    return errs


def validate_service_account(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta_update(m(obj, "metadata"), m(old, "metadata")) if old is not None else []
    return errs + validate_object_meta(m(obj, "metadata"), True, name_is_dns_subdomain)


def validate_node(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = m(obj, "spec")
    if old is None:
        errs = validate_object_meta(m(obj, "metadata"), False, name_is_dns_subdomain)
        errs += validate_taints(spec.get("taints"), "metadata.taints")
        errs += _node_resources(obj)
        return errs + _pod_cidrs(spec)
    errs = validate_object_meta_update(m(obj, "metadata"), m(old, "metadata"))
    errs += _node_resources(obj)
    errs += _node_update(spec, m(old, "spec"))
    return errs + validate_taints(spec.get("taints"), "metadata.taints")


def _node_resources(obj: Obj) -> list[Cause]:
    errs: list[Cause] = []
    for field in ("capacity", "allocatable"):
        for name, value in m(obj, "status", field).items():
            qty = try_parse(value)
            if qty is not None and qty.value < 0:
                errs.append(invalid(f"status.{field}.{name}", str(qty), "must be greater than or equal to 0"))
    return errs


def _pod_cidrs(spec: Obj) -> list[Cause]:
    cidrs, errs = [as_str(c) for c in as_list(spec.get("podCIDRs"))], []
    for i, cidr in enumerate(cidrs):
        errs += fmt.validate_cidr(index("spec.podCIDRs", i), cidr)
    for i, cidr in enumerate(cidrs):
        if cidr in cidrs[:i]:
            errs.append(duplicate(index("spec.podCIDRs", i), cidr))
    return errs


def _node_update(spec: Obj, old: Obj) -> list[Cause]:
    errs: list[Cause] = []
    old_cidrs = as_list(old.get("podCIDRs"))
    if old_cidrs and old_cidrs != as_list(spec.get("podCIDRs")):
        errs.append(forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))
    provider = as_str(old.get("providerID"))
    if provider and provider != as_str(spec.get("providerID")):
        errs.append(forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid'))
    if as_str(spec.get("externalID")) != as_str(old.get("externalID")):
        errs.append(forbidden("spec.externalID", "may not be updated"))
    return errs


def validate_taints(taints: object, path: str) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(maps(taints)):
        tpath, key, effect = index(path, i), as_str(taint.get("key")), as_str(taint.get("effect"))
        errs += validate_label_name(key, child(tpath, "key"))
        value = as_str(taint.get("value"))
        msgs = fmt.is_label_value(value)
        if msgs:
            errs.append(invalid(child(tpath, "value"), value, ";".join(msgs)))
        if not effect:
            errs.append(required(child(tpath, "effect")))
        elif effect not in TAINT_EFFECTS:
            errs.append(not_supported(child(tpath, "effect"), effect, TAINT_EFFECTS))
        if (key, effect) in seen:
            errs.append(duplicate(tpath, _taint_struct(taint), "taints must be unique by key and effect pair"))
            continue
        seen.add((key, effect))
    return errs


def _taint_struct(taint: Obj) -> GoStruct:
    # upstream reports its internal Taint struct, which has no json tags
    return GoStruct(Key=taint.get("key", ""), Value=taint.get("value", ""), Effect=taint.get("effect", ""),
                    TimeAdded=taint.get("timeAdded"))


def validate_endpoints(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta_update(m(obj, "metadata"), m(old, "metadata")) if old is not None else []
    errs += validate_object_meta(m(obj, "metadata"), True, name_is_dns_subdomain)
    for i, subset in enumerate(maps(obj.get("subsets"))):
        errs += _subset(subset, index("subsets", i))
    return errs


def _subset(subset: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if not as_list(subset.get("addresses")) and not as_list(subset.get("notReadyAddresses")):
        errs.append(required(path, "must specify `addresses` or `notReadyAddresses`"))
    for field in ("addresses", "notReadyAddresses"):
        for i, address in enumerate(maps(subset.get(field))):
            errs += endpoint_address(address, index(child(path, field), i))
    ports = maps(subset.get("ports"))
    for i, port in enumerate(ports):
        errs += _endpoint_port(port, len(ports) > 1, index(child(path, "ports"), i))
    return errs


def endpoint_address(address: Obj, path: str) -> list[Cause]:
    ip = as_str(address.get("ip"))
    errs = fmt.validate_ip(child(path, "ip"), ip)
    hostname = as_str(address.get("hostname"))
    if hostname:
        errs += invalid_each(child(path, "hostname"), hostname, fmt.is_dns1123_label(hostname))
    node = address.get("nodeName")
    if node is not None:
        errs += invalid_each(child(path, "nodeName"), as_str(node), fmt.is_dns1123_subdomain(as_str(node)))
    return errs + non_special_ip(ip, child(path, "ip"))


def non_special_ip(value: str, path: str) -> list[Cause]:
    ip = fmt.parse_ip_sloppy(value)
    if ip is None:
        return [invalid(path, value, "must be a valid IP address")]
    errs: list[Cause] = []
    if ip.is_unspecified:
        errs.append(invalid(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        errs.append(invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local and not ip.is_multicast:
        errs.append(invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if _link_local_multicast(value):
        errs.append(invalid(path, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return errs


def _link_local_multicast(value: str) -> bool:
    ip = fmt.parse_ip_sloppy(value)
    if ip is None:
        return False
    if ip.version == 4:
        return str(ip).startswith("224.0.0.")
    return ip.packed[0] == 0xFF and ip.packed[1] & 0x0F == 0x02


def _endpoint_port(port: Obj, require_name: bool, path: str) -> list[Cause]:
    name, errs = as_str(port.get("name")), []
    if require_name and not name:
        errs.append(required(child(path, "name")))
    elif name:
        errs += invalid_each(child(path, "name"), name, fmt.is_dns1123_label(name))
    number = as_int(port.get("port")) or 0
    errs += invalid_each(child(path, "port"), number, fmt.is_valid_port_num(number))
    errs += validate_protocol(port.get("protocol"), child(path, "protocol"))
    if port.get("appProtocol") is not None:
        errs += validate_label_name(as_str(port.get("appProtocol")), child(path, "appProtocol"))
    return errs


def validate_binding(obj: Obj, old: Obj | None) -> list[Cause]:
    return binding_target(obj)

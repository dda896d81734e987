"""discovery.k8s.io/v1 EndpointSlice validation."""

from __future__ import annotations

from kubelite.objects.errors import Cause
from kubelite.objects.validation import formats as fmt
from kubelite.objects.validation.access import Obj, as_list, as_str, m, maps
from kubelite.objects.validation.container import validate_protocol
from kubelite.objects.validation.core import non_special_ip
from kubelite.objects.validation.fielderr import (
    child,
    duplicate,
    immutable,
    index,
    invalid,
    invalid_each,
    not_supported,
    required,
    too_many,
)
from kubelite.objects.validation.meta import (
    name_is_dns_subdomain,
    validate_label_name,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")


def validate_endpoint_slice(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(m(obj, "metadata"), True, name_is_dns_subdomain)
    address_type = as_str(obj.get("addressType"))
    valid_types = ADDRESS_TYPES + (("IP",) if old is not None else ())
    if not address_type:
        errs.append(required("addressType"))
    elif address_type not in valid_types:
        errs.append(not_supported("addressType", address_type, sorted(valid_types)))
    errs += _endpoints(obj.get("endpoints"), address_type)
    errs += _ports(obj.get("ports"))
    if old is not None:
        errs += validate_object_meta_update(m(obj, "metadata"), m(old, "metadata"))
        if address_type != as_str(old.get("addressType")):
            errs.append(immutable("addressType", address_type))
    return errs


def _endpoints(endpoints: object, address_type: str) -> list[Cause]:
    items, errs = maps(endpoints), []
    if len(items) > 1000:
        return [too_many("endpoints", len(items), 1000)]
    for i, endpoint in enumerate(items):
        path = index("endpoints", i)
        addresses = as_list(endpoint.get("addresses"))
        if not addresses:
            errs.append(required(child(path, "addresses"), "must contain at least 1 address"))
        elif len(addresses) > 100:
            errs.append(too_many(child(path, "addresses"), len(addresses), 100))
        for j, address in enumerate(addresses):
            errs += _address(as_str(address), address_type, index(child(path, "addresses"), j))
        errs += validate_labels(endpoint.get("topology"), child(path, "topology"))
        if endpoint.get("hostname") is not None:
            hostname = as_str(endpoint.get("hostname"))
            errs += invalid_each(child(path, "hostname"), hostname, fmt.is_dns1123_label(hostname))
    return errs


def _address(address: str, address_type: str, path: str) -> list[Cause]:
    if address_type in ("IPv4", "IPv6"):
        ip = fmt.parse_ip_sloppy(address)
        if ip is None or ip.version != int(address_type[-1]):
            return [invalid(path, address, f"must be a valid {address_type} address")]
        return non_special_ip(address, path)
    if address_type == "FQDN":
        labels = address.removesuffix(".")
        msgs = fmt.is_dns1123_subdomain(labels)
        if msgs:
            return [invalid(path, labels, ",".join(msgs))]
        if "." not in labels:
            return [invalid(path, labels, "should be a domain with at least two segments separated by dots")]
    return []


def _ports(ports: object) -> list[Cause]:
    items, errs, names = maps(ports), [], set()
    if len(items) > 100:
        return [too_many("ports", len(items), 100)]
    for i, port in enumerate(items):
        path, name = index("ports", i), as_str(port.get("name"))
        if name:
            errs += invalid_each(child(path, "name"), name, fmt.is_dns1123_label(name))
        if name in names:
            errs.append(duplicate(child(path, "name"), name))
        names.add(name)
        errs += validate_protocol(port.get("protocol"), child(path, "protocol"))
        if port.get("appProtocol") is not None:
            errs += validate_label_name(as_str(port.get("appProtocol")), child(path, "appProtocol"))
    return errs

"""Container validation: names, images, ports, env, mounts, probes, lifecycle, resources.

Follows `validateContainerCommon`, `validateContainers` and `validateInitContainers` of upstream's
`pkg/apis/core/validation`, with relaxed environment-variable names (GA upstream).
"""

from __future__ import annotations

import math
from typing import Any

from kubelite.objects.errors import Cause
from kubelite.objects.validation import formats as fmt
from kubelite.objects.validation.access import Obj, as_int, as_list, as_map, as_str, maps
from kubelite.objects.validation.fielderr import (
    child,
    duplicate,
    exactly_one,
    forbidden,
    index,
    invalid,
    invalid_each,
    non_negative,
    not_supported,
    required,
)
from kubelite.objects.validation.quantity import Quantity, try_parse
from kubelite.objects.validation.volumes import validate_mounts

PROTOCOLS = ("SCTP", "TCP", "UDP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_POLICIES = ("File", "FallbackToLogsOnError")
HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc", "sleep")
ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
RESOURCE_FIELDS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                   "requests.ephemeral-storage", "requests.memory")
STANDARD_RESOURCES = (
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "resourcequotas", "services",
    "replicationcontrollers", "secrets", "configmaps", "persistentvolumeclaims", "storage",
    "requests.storage", "services.nodeports", "services.loadbalancers",
)
CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
DOWNWARD_API_LABELS = ("metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
                       "metadata.uid", "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName",
                       "spec.schedulerName", "status.phase", "status.hostIP", "status.hostIPs", "status.podIP",
                       "status.podIPs")


def validate_containers(containers: Any, volumes: dict[str, Obj], grace: int | None, path: str) -> list[Cause]:
    items = maps(containers)
    if not items:
        return [required(path)]
    errs: list[Cause] = []
    names: set[str] = set()
    for i, ctr in enumerate(items):
        cpath, name = index(path, i), as_str(ctr.get("name"))
        errs += validate_container_common(ctr, volumes, cpath)
        if name in names:
            errs.append(duplicate(child(cpath, "name"), name))
        names.add(name)
        errs += _handlers_and_probes(ctr, grace, cpath)
        if ctr.get("restartPolicy") is not None:
            errs.append(forbidden(child(cpath, "restartPolicy"), "may not be set for non-init containers"))
    return errs + host_port_conflicts(items, path)


def validate_init_containers(inits: Any, regular: Any, volumes: dict[str, Obj], grace: int | None,
                             path: str) -> list[Cause]:
    errs: list[Cause] = []
    names = {as_str(c.get("name")) for c in maps(regular)}
    for i, ctr in enumerate(maps(inits)):
        cpath, name = index(path, i), as_str(ctr.get("name"))
        errs += validate_container_common(ctr, volumes, cpath)
        policy = ctr.get("restartPolicy")
        if policy is not None and policy != "Always":
            errs.append(not_supported(child(cpath, "restartPolicy"), policy, ("Always",)))
        if name in names:
            errs.append(duplicate(child(cpath, "name"), name))
        elif name:
            names.add(name)
        errs += host_port_conflicts([ctr], path)
        errs += _init_container_extras(ctr, policy == "Always", grace, cpath)
    return errs


def _init_container_extras(ctr: Obj, sidecar: bool, grace: int | None, path: str) -> list[Cause]:
    if sidecar:
        return _handlers_and_probes(ctr, grace, path)
    return [forbidden(child(path, field), "may not be set for init containers without restartPolicy=Always")
            for field in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe")
            if ctr.get(field) is not None]


def validate_container_common(ctr: Obj, volumes: dict[str, Obj], path: str) -> list[Cause]:
    errs: list[Cause] = []
    name = as_str(ctr.get("name"))
    if not name:
        errs.append(required(child(path, "name")))
    else:
        errs += invalid_each(child(path, "name"), name, fmt.is_dns1123_label(name))
    if not as_str(ctr.get("image")):
        errs.append(required(child(path, "image")))
    errs += _enum(ctr.get("terminationMessagePolicy"), TERMINATION_POLICIES, child(path, "terminationMessagePolicy"))
    errs += validate_container_ports(ctr.get("ports"), child(path, "ports"))
    errs += validate_env(ctr.get("env"), child(path, "env"))
    errs += validate_env_from(ctr.get("envFrom"), child(path, "envFrom"))
    errs += validate_mounts(ctr.get("volumeMounts"), volumes, child(path, "volumeMounts"))
    errs += _enum(ctr.get("imagePullPolicy"), PULL_POLICIES, child(path, "imagePullPolicy"))
    errs += validate_resources(as_map(ctr.get("resources")), child(path, "resources"))
    errs += validate_security_context(as_map(ctr.get("securityContext")), child(path, "securityContext"))
    return errs


def _enum(value: Any, allowed: tuple[str, ...], path: str) -> list[Cause]:
    if value in allowed:
        return []
    if not value:
        return [required(path)]
    return [not_supported(path, value, allowed)]


def _handlers_and_probes(ctr: Obj, grace: int | None, path: str) -> list[Cause]:
    errs: list[Cause] = []
    lifecycle = as_map(ctr.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        if isinstance(lifecycle.get(hook), dict):
            errs += _handler(lifecycle[hook], grace, child(path, "lifecycle", hook))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(ctr.get(probe), dict):
            errs += validate_probe(ctr[probe], probe, grace, child(path, probe))
    return errs


def validate_probe(probe: Obj, kind: str, grace: int | None, path: str) -> list[Cause]:
    errs = _handler(probe, grace, path)
    for field in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                  "failureThreshold"):
        errs += non_negative(child(path, field), probe.get(field))
    probe_grace = as_int(probe.get("terminationGracePeriodSeconds"))
    if probe_grace is not None and probe_grace <= 0:
        errs.append(invalid(child(path, "terminationGracePeriodSeconds"), probe_grace, "must be greater than 0"))
    if kind != "readinessProbe" and probe.get("successThreshold", 1) != 1:
        errs.append(invalid(child(path, "successThreshold"), probe.get("successThreshold"), "must be 1"))
    if kind == "readinessProbe" and probe.get("terminationGracePeriodSeconds") is not None:
        errs.append(invalid(child(path, "terminationGracePeriodSeconds"), probe["terminationGracePeriodSeconds"],
                            "must not be set for readinessProbes"))
    return errs


def _handler(handler: Obj, grace: int | None, path: str) -> list[Cause]:
    return exactly_one(handler, HANDLERS, path, "handler type",
                       lambda kind, action, where: _handler_action(kind, action, grace, where))


def _handler_action(kind: str, action: Obj, grace: int | None, path: str) -> list[Cause]:
    if kind == "exec":
        return [] if as_list(action.get("command")) else [required(child(path, "command"))]
    if kind == "httpGet":
        return _http_get(action, path)
    if kind == "sleep":
        seconds = as_int(action.get("seconds")) or 0
        if grace is not None and not 0 <= seconds <= grace:
            return [invalid(path, seconds, "must be non-negative and less than terminationGracePeriodSeconds "
                                           f"({grace})")]
        return []
    return validate_port_num_or_name(action.get("port"), child(path, "port"))


def _http_get(action: Obj, path: str) -> list[Cause]:
    errs = [] if as_str(action.get("path")) else [required(child(path, "path"))]
    errs += validate_port_num_or_name(action.get("port"), child(path, "port"))
    scheme = action.get("scheme")
    if scheme not in ("HTTP", "HTTPS"):
        errs.append(not_supported(child(path, "scheme"), as_str(scheme), ("HTTP", "HTTPS")))
    for header in maps(action.get("httpHeaders")):
        name = as_str(header.get("name"))
        errs += invalid_each(child(path, "httpHeaders"), name, fmt.is_http_header_name(name))
    return errs


def validate_port_num_or_name(port: Any, path: str) -> list[Cause]:
    if isinstance(port, str):
        return invalid_each(path, port, fmt.is_valid_port_name(port))
    number = as_int(port) or 0
    return invalid_each(path, number, fmt.is_valid_port_num(number))


def validate_container_ports(ports: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(maps(ports)):
        ppath, name = index(path, i), as_str(port.get("name"))
        if name:
            msgs = fmt.is_valid_port_name(name)
            if msgs:
                errs += invalid_each(child(ppath, "name"), name, msgs)
            elif name in names:
                errs.append(duplicate(child(ppath, "name"), name))
            names.add(name)
        errs += _port_numbers(port, ppath)
        errs += validate_protocol(port.get("protocol"), child(ppath, "protocol"))
    return errs


def _port_numbers(port: Obj, path: str) -> list[Cause]:
    container, host = as_int(port.get("containerPort")) or 0, as_int(port.get("hostPort")) or 0
    errs = [required(child(path, "containerPort"))] if container == 0 else \
        invalid_each(child(path, "containerPort"), container, fmt.is_valid_port_num(container))
    if host:
        errs += invalid_each(child(path, "hostPort"), host, fmt.is_valid_port_num(host))
    return errs


def validate_protocol(protocol: Any, path: str) -> list[Cause]:
    if not protocol:
        return [required(path)]
    return [] if protocol in PROTOCOLS else [not_supported(path, protocol, PROTOCOLS)]


def host_port_conflicts(containers: list[Obj], path: str) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for ci, ctr in enumerate(containers):
        for pi, port in enumerate(maps(ctr.get("ports"))):
            host = as_int(port.get("hostPort")) or 0
            if not host:
                continue
            key = f"{as_str(port.get('protocol'))}/{as_str(port.get('hostIP'))}/{host}"
            if key in seen:
                errs.append(duplicate(child(index(child(index(path, ci), "ports"), pi), "hostPort"), key))
            seen.add(key)
    return errs


def validate_env(env: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, var in enumerate(maps(env)):
        vpath, name = index(path, i), as_str(var.get("name"))
        if not name:
            errs.append(required(child(vpath, "name")))
        else:
            errs += invalid_each(child(vpath, "name"), name, fmt.is_relaxed_env_var_name(name))
        if isinstance(var.get("valueFrom"), dict):
            errs += _env_value_from(var["valueFrom"], as_str(var.get("value")), child(vpath, "valueFrom"))
    return errs


def _env_value_from(source: Obj, value: str, path: str) -> list[Cause]:
    errs: list[Cause] = []
    kinds = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef")
             if isinstance(source.get(k), dict)]
    for kind in kinds:
        errs += _ENV_SOURCE_CHECKS.get(kind, _no_env_check)(source[kind], child(path, kind))
    if not kinds:
        errs.append(invalid(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` "
                                      "or `secretKeyRef`"))
    elif value:
        errs.append(invalid(path, "", "may not be specified when `value` is not empty"))
    elif len(kinds) > 1:
        errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def _no_env_check(ref: Obj, path: str) -> list[Cause]:
    return []


def _field_ref(ref: Obj, path: str) -> list[Cause]:
    if not as_str(ref.get("apiVersion")):
        return [required(child(path, "apiVersion"))]
    field_path = as_str(ref.get("fieldPath"))
    if not field_path:
        return [required(child(path, "fieldPath"))]
    base, subscript = split_subscript(field_path)
    if base not in DOWNWARD_API_LABELS:
        return [invalid(child(path, "fieldPath"), field_path,
                        f"error converting fieldPath: field label not supported: {field_path}")]
    if subscript is not None:
        if base == "metadata.annotations":
            return invalid_each(path, subscript.lower(), fmt.is_qualified_name(subscript.lower()))
        if base == "metadata.labels":
            return invalid_each(path, subscript, fmt.is_qualified_name(subscript))
        return [invalid(path, base, "does not support subscript")]
    if base not in ENV_FIELD_PATHS:
        return [not_supported(child(path, "fieldPath"), base, ENV_FIELD_PATHS)]
    return []


def split_subscript(field_path: str) -> tuple[str, str | None]:
    """`metadata.labels['app']` -> (`metadata.labels`, `app`); no subscript -> (path, None)."""
    if field_path.endswith("']") and "['" in field_path:
        base, _, rest = field_path.partition("['")
        return base, rest[:-2]
    return field_path, None


def _resource_field_ref(ref: Obj, path: str) -> list[Cause]:
    resource = as_str(ref.get("resource"))
    if not resource:
        return [required(child(path, "resource"))]
    if resource not in RESOURCE_FIELDS and not resource.startswith(("requests.hugepages-", "limits.hugepages-")):
        return [not_supported(child(path, "resource"), resource, RESOURCE_FIELDS)]
    return []


def _key_ref(ref: Obj, path: str) -> list[Cause]:
    name, key = as_str(ref.get("name")), as_str(ref.get("key"))
    errs = invalid_each(child(path, "name"), name, fmt.is_dns1123_subdomain(name))
    if not key:
        return errs + [required(child(path, "key"))]
    return errs + invalid_each(child(path, "key"), key, fmt.is_config_map_key(key))


_ENV_SOURCE_CHECKS = {"fieldRef": _field_ref, "resourceFieldRef": _resource_field_ref,
                      "configMapKeyRef": _key_ref, "secretKeyRef": _key_ref}


def validate_env_from(sources: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, source in enumerate(maps(sources)):
        spath, prefix = index(path, i), as_str(source.get("prefix"))
        if prefix:
            errs += invalid_each(child(spath, "prefix"), prefix, fmt.is_relaxed_env_var_name(prefix))
        kinds = [k for k in ("configMapRef", "secretRef") if isinstance(source.get(k), dict)]
        for kind in kinds:
            name = as_str(as_map(source[kind]).get("name"))
            if not name:
                errs.append(required(child(spath, kind, "name")))
            else:
                # upstream checks these names as prefixes (a trailing '-' is allowed)
                masked = name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name
                errs += invalid_each(child(spath, kind, "name"), name, fmt.is_dns1123_subdomain(masked))
        if not kinds:
            errs.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(kinds) > 1:
            errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def validate_resources(resources: Obj, path: str) -> list[Cause]:
    limits, requests = _quantities(resources.get("limits")), _quantities(resources.get("requests"))
    errs: list[Cause] = []
    for name, qty in limits.items():
        errs += _resource_entry(name, qty, index(child(path, "limits"), name))
    for name, qty in requests.items():
        errs += _resource_entry(name, qty, index(child(path, "requests"), name))
        errs += _request_vs_limit(name, qty, limits, path)
    return errs


def _quantities(values: Any) -> dict[str, Quantity]:
    parsed = {k: try_parse(v) for k, v in as_map(values).items()}
    return {k: q for k, q in parsed.items() if q is not None}


def _resource_entry(name: str, qty: Quantity, path: str) -> list[Cause]:
    errs = validate_container_resource_name(name, path)
    if qty.value < 0:
        errs.append(invalid(path, str(qty), "must be greater than or equal to 0"))
    if _is_integer_resource(name) and math.ceil(qty.value * 1000) % 1000:
        errs.append(invalid(path, str(qty), "must be an integer"))
    return errs


def _request_vs_limit(name: str, qty: Quantity, limits: dict[str, Quantity], path: str) -> list[Cause]:
    req_path = child(path, "requests")
    if name in limits:
        limit = limits[name]
        if qty.value != limit.value and not _overcommit_allowed(name):
            return [invalid(req_path, str(qty), f"must be equal to {name} limit of {limit}")]
        if qty.value > limit.value:
            return [invalid(req_path, str(qty), f"must be less than or equal to {name} limit of {limit}")]
        return []
    if not _overcommit_allowed(name):
        return [required(child(path, "limits"), "Limit must be set for non overcommitable resources")]
    return []


def _is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _overcommit_allowed(name: str) -> bool:
    return _is_native(name) and not name.startswith("hugepages-")


def _is_integer_resource(name: str) -> bool:
    return not _is_native(name) and not name.startswith("requests.")


def validate_container_resource_name(name: str, path: str) -> list[Cause]:
    errs = invalid_each(path, name, fmt.is_qualified_name(name))
    if errs:
        return errs
    if "/" not in name:
        if name not in STANDARD_RESOURCES and not name.startswith(("hugepages-", "requests.hugepages-")):
            errs.append(invalid(path, name, "must be a standard resource type or fully qualified"))
        if name not in CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif not _is_native(name) and fmt.is_qualified_name("requests." + name):
        errs.append(invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def validate_security_context(sc: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for field in ("runAsUser", "runAsGroup"):
        value = as_int(sc.get(field))
        if value is not None:
            errs += invalid_each(child(path, field), value, fmt.is_valid_id(value))
    proc_mount = sc.get("procMount")
    if proc_mount is not None and proc_mount not in ("Default", "Unmasked"):
        errs.append(not_supported(child(path, "procMount"), proc_mount, ("Default", "Unmasked")))
    if sc.get("allowPrivilegeEscalation") is False and sc.get("privileged") is True:
        errs.append(invalid(path, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
    return errs

"""Pod and pod template validation (`ValidatePodCreate`, `ValidatePodUpdate`, `ValidatePodSpec`)."""

from __future__ import annotations

import copy
from typing import Any

from kubelite.objects.errors import Cause
from kubelite.objects.validation import formats as fmt
from kubelite.objects.validation.access import Obj, as_int, as_list, as_str, m, maps
from kubelite.objects.validation.container import (
    validate_container_common,
    validate_containers,
    validate_init_containers,
)
from kubelite.objects.validation.fielderr import (
    child,
    duplicate,
    forbidden,
    go_json,
    index,
    invalid,
    invalid_each,
    not_supported,
    required,
)
from kubelite.objects.validation.meta import (
    name_is_dns_subdomain,
    validate_annotations,
    validate_label_name,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.objects.validation.volumes import validate_volumes

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
UPDATABLE_POD_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)
MAX_INT32 = 2147483647


def validate_pod(pod: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta_update(m(pod, "metadata"), m(old, "metadata")) if old is not None else []
    errs += _pod_metadata_and_spec(pod)
    spec = m(pod, "spec")
    if old is None:
        if as_list(spec.get("ephemeralContainers")):
            errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
        if as_str(spec.get("nodeName")) and as_list(spec.get("schedulingGates")):
            errs.append(forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
        return errs
    return errs + validate_pod_spec_update(spec, m(old, "spec"))


def _pod_metadata_and_spec(pod: Obj) -> list[Cause]:
    meta, spec = m(pod, "metadata"), m(pod, "spec")
    errs = validate_object_meta(meta, True, name_is_dns_subdomain)
    errs += validate_pod_spec(spec, "spec", is_pod=True)
    if not as_str(spec.get("serviceAccountName")):
        errs += _token_volumes_without_sa(spec)
    for field in ("containers", "initContainers"):
        for i, ctr in enumerate(maps(spec.get(field))):
            image = as_str(ctr.get("image"))
            if image != image.strip():
                errs.append(invalid(f"spec.{field}[{i}].image", image, "must not have leading or trailing whitespace"))
    return errs


def _token_volumes_without_sa(spec: Obj) -> list[Cause]:
    errs = []
    for vi, vol in enumerate(maps(spec.get("volumes"))):
        for si, source in enumerate(maps(m(vol, "projected").get("sources"))):
            if isinstance(source.get("serviceAccountToken"), dict):
                errs.append(forbidden(f"spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken",
                                      "must not be specified when serviceAccountName is not set"))
    return errs


def validate_pod_template(template: Obj, path: str) -> list[Cause]:
    meta, spec = m(template, "metadata"), m(template, "spec")
    errs = validate_labels(meta.get("labels"), child(path, "labels"))
    errs += validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs += validate_pod_spec(spec, child(path, "spec"), is_pod=False)
    if as_list(spec.get("ephemeralContainers")):
        errs.append(forbidden(child(path, "spec", "ephemeralContainers"),
                              "ephemeral containers not allowed in pod template"))
    return errs


def validate_pod_spec(spec: Obj, path: str, *, is_pod: bool) -> list[Cause]:
    errs: list[Cause] = []
    grace = as_int(spec.get("terminationGracePeriodSeconds"))
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.append(required(child(path, "terminationGracePeriodSeconds")))
    volumes, verrs = validate_volumes(as_list(spec.get("volumes")), child(path, "volumes"))
    errs += verrs
    errs += validate_containers(spec.get("containers"), volumes, grace, child(path, "containers"))
    errs += validate_init_containers(spec.get("initContainers"), spec.get("containers"), volumes, grace,
                                     child(path, "initContainers"))
    errs += _ephemeral_containers(spec, volumes, path)
    errs += _host_network_ports(spec, path, is_pod)
    errs += _policy(spec.get("restartPolicy"), RESTART_POLICIES, child(path, "restartPolicy"))
    errs += _policy(spec.get("dnsPolicy"), DNS_POLICIES, child(path, "dnsPolicy"))
    errs += validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector"))
    errs += _pod_security_context(m(spec, "securityContext"), child(path, "securityContext"))
    errs += _image_pull_secrets(spec.get("imagePullSecrets"), child(path, "imagePullSecrets"))
    errs += _dns_config(spec, path)
    errs += _gates(spec, path)
    errs += _named_fields(spec, path, ("serviceAccountName", "nodeName"))
    errs += _active_deadline(spec, path)
    errs += _named_fields(spec, path, ("hostname", "subdomain"))
    errs += validate_tolerations(spec.get("tolerations"), child(path, "tolerations"))
    errs += _named_fields(spec, path, ("priorityClassName",))
    return errs + _preemption_and_os(spec, path)


def _policy(value: Any, allowed: tuple[str, ...], path: str) -> list[Cause]:
    if value in allowed:
        return []
    return [required(path)] if not value else [not_supported(path, value, allowed)]


def _ephemeral_containers(spec: Obj, volumes: dict[str, Obj], path: str) -> list[Cause]:
    errs: list[Cause] = []
    names = {as_str(c.get("name")) for c in maps(spec.get("containers")) + maps(spec.get("initContainers"))}
    for i, ctr in enumerate(maps(spec.get("ephemeralContainers"))):
        cpath, name = index(child(path, "ephemeralContainers"), i), as_str(ctr.get("name"))
        errs += validate_container_common(ctr, volumes, cpath)
        if name in names:
            errs.append(duplicate(child(cpath, "name"), name))
        names.add(name)
    return errs


def _host_network_ports(spec: Obj, path: str, is_pod: bool) -> list[Cause]:
    if spec.get("hostNetwork") is not True:
        return []
    errs = []
    for ci, ctr in enumerate(maps(spec.get("containers"))):
        for pi, port in enumerate(maps(ctr.get("ports"))):
            host, container = as_int(port.get("hostPort")) or 0, as_int(port.get("containerPort")) or 0
            if (is_pod or host != 0) and host != container:
                errs.append(invalid(f"{path}.containers[{ci}].ports[{pi}].hostPort", host,
                                    "must match `containerPort` when `hostNetwork` is true"))
    return errs


def _pod_security_context(sc: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for field in ("fsGroup", "runAsUser", "runAsGroup"):
        value = as_int(sc.get(field))
        if value is not None:
            errs += invalid_each(child(path, field), value, fmt.is_valid_id(value))
    for i, gid in enumerate(as_list(sc.get("supplementalGroups"))):
        value = as_int(gid)
        if value is not None:
            errs += invalid_each(index(child(path, "supplementalGroups"), i), value, fmt.is_valid_id(value))
    policy = sc.get("fsGroupChangePolicy")
    if policy is not None and policy not in ("Always", "OnRootMismatch"):
        errs.append(not_supported(child(path, "fsGroupChangePolicy"), policy, ("Always", "OnRootMismatch")))
    return errs


def _image_pull_secrets(secrets: Any, path: str) -> list[Cause]:
    return [invalid(index(path, i), ref, "only name may be set")
            for i, ref in enumerate(maps(secrets)) if set(ref) - {"name"}]


def _dns_config(spec: Obj, path: str) -> list[Cause]:
    config, cpath = spec.get("dnsConfig"), child(path, "dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if not isinstance(config, dict):
            return [required(cpath, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not as_list(config.get("nameservers")):
            return [required(child(cpath, "nameservers"),
                             "must provide at least one DNS nameserver when `dnsPolicy` is None")]
    if not isinstance(config, dict):
        return []
    errs = _nameservers(as_list(config.get("nameservers")), child(cpath, "nameservers"))
    for i, search in enumerate(as_list(config.get("searches"))):
        if as_str(search) != ".":
            trimmed = as_str(search).removesuffix(".")
            errs += invalid_each(index(child(cpath, "searches"), i), trimmed,
                                 fmt.is_dns1123_subdomain_underscore(trimmed))
    for i, option in enumerate(maps(config.get("options"))):
        if not as_str(option.get("name")):
            errs.append(required(index(child(cpath, "options"), i), "must not be empty"))
    return errs


def _nameservers(servers: list[Any], path: str) -> list[Cause]:
    errs = [invalid(path, servers, "must not have more than 3 nameservers")] if len(servers) > 3 else []
    for i, server in enumerate(servers):
        errs += fmt.validate_ip(index(path, i), as_str(server))
    return errs


_NAME_CHECKS = {"serviceAccountName": fmt.is_dns1123_subdomain, "nodeName": fmt.is_dns1123_subdomain,
                "hostname": fmt.is_dns1123_label, "subdomain": fmt.is_dns1123_label,
                "priorityClassName": fmt.is_dns1123_subdomain}


def _named_fields(spec: Obj, path: str, fields: tuple[str, ...]) -> list[Cause]:
    errs: list[Cause] = []
    for field in fields:
        value = as_str(spec.get(field))
        if value:
            errs += invalid_each(child(path, field), value, _NAME_CHECKS[field](value))
    return errs


def _active_deadline(spec: Obj, path: str) -> list[Cause]:
    deadline = as_int(spec.get("activeDeadlineSeconds"))
    if deadline is not None and not 1 <= deadline <= MAX_INT32:
        return [invalid(child(path, "activeDeadlineSeconds"), deadline, fmt.inclusive_range(1, MAX_INT32))]
    return []


def _gates(spec: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, gate in enumerate(maps(spec.get("readinessGates"))):
        errs += validate_label_name(as_str(gate.get("conditionType")),
                                    child(index(child(path, "readinessGates"), i), "conditionType"))
    seen: set[str] = set()
    for i, gate in enumerate(maps(spec.get("schedulingGates"))):
        name, gpath = as_str(gate.get("name")), index(child(path, "schedulingGates"), i)
        errs += validate_label_name(name, gpath)
        if name in seen:
            errs.append(duplicate(gpath, name))
        seen.add(name)
    return errs


def _preemption_and_os(spec: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    policy = spec.get("preemptionPolicy")
    if policy is not None and policy not in ("PreemptLowerPriority", "Never"):
        errs.append(not_supported(child(path, "preemptionPolicy"), policy, ("PreemptLowerPriority", "Never")))
    os_name = m(spec, "os").get("name")
    if isinstance(spec.get("os"), dict) and os_name not in ("linux", "windows"):
        errs.append(not_supported(child(path, "os", "name"), as_str(os_name), ("linux", "windows")))
    return errs


def validate_tolerations(tolerations: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, tol in enumerate(maps(tolerations)):
        tpath, key = index(path, i), as_str(tol.get("key"))
        op, effect = as_str(tol.get("operator")), as_str(tol.get("effect"))
        if key:
            errs += validate_label_name(key, child(tpath, "key"))
        if not key and op != "Exists":
            errs.append(invalid(child(tpath, "operator"), op, 'operator must be Exists when `key` is empty, which '
                                                              'means "match all values and all keys"'))
        if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid(child(tpath, "effect"), effect, "effect must be 'NoExecute' when "
                                                                "`tolerationSeconds` is set"))
        errs += _toleration_operator(op, as_str(tol.get("value")), child(tpath, "operator"))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(not_supported(child(tpath, "effect"), effect, TAINT_EFFECTS))
    return errs


def _toleration_operator(op: str, value: str, path: str) -> list[Cause]:
    if op in ("Equal", ""):
        msgs = fmt.is_label_value(value)
        return [invalid(path, value, ";".join(msgs))] if msgs else []
    if op == "Exists":
        return [invalid(path, value, "value must be empty when `operator` is 'Exists'")] if value else []
    return [not_supported(path, op, ("Equal", "Exists"))]


def validate_pod_spec_update(new: Obj, old: Obj) -> list[Cause]:
    """The parts of a pod spec an update may change, then the rest must be equal."""
    errs: list[Cause] = []
    for field in ("containers", "initContainers"):
        cerrs, stop = _container_updates(maps(new.get(field)), maps(old.get(field)), f"spec.{field}")
        errs += cerrs
        if stop:
            return errs
    deadline_errs, stop = _deadline_update(new, old)
    errs += deadline_errs
    if stop:
        return errs
    errs += _only_added_tolerations(maps(new.get("tolerations")), maps(old.get("tolerations")))
    errs += _only_deleted_gates(new, old)
    new, old = semantic(new), semantic(old)
    if new == old:
        return errs
    munged = _munge(new, old)
    if munged != old:
        detail = "pod updates may not change fields other than " + ",".join(UPDATABLE_POD_FIELDS)
        errs.append(forbidden("spec", detail + "\n" + spec_diff(old, munged)))
    return errs


def _container_updates(new: list[Obj], old: list[Obj], path: str) -> tuple[list[Cause], bool]:
    if len(new) != len(old):
        return [forbidden(path, "pod updates may not add or remove containers")], True
    errs: list[Cause] = []
    for i, ctr in enumerate(new):
        image = as_str(ctr.get("image"))
        if not image:
            errs.append(required(f"{path}[{i}].image"))
        if image != image.strip():
            errs.append(invalid(f"{path}[{i}].image", image, "must not have leading or trailing whitespace"))
    return errs, False


def _deadline_update(new: Obj, old: Obj) -> tuple[list[Cause], bool]:
    new_value, old_value = as_int(new.get("activeDeadlineSeconds")), as_int(old.get("activeDeadlineSeconds"))
    path = "spec.activeDeadlineSeconds"
    if new_value is None:
        if old_value is not None:
            return [invalid(path, None, "must not update from a positive integer to nil value")], False
        return [], False
    if not 0 <= new_value <= MAX_INT32:
        return [invalid(path, new_value, fmt.inclusive_range(0, MAX_INT32))], True
    if old_value is not None and old_value < new_value:
        return [invalid(path, new_value, "must be less than or equal to previous value")], True
    return [], False


def _only_added_tolerations(new: list[Obj], old: list[Obj]) -> list[Cause]:
    def strip(tol: Obj) -> Obj:
        return {k: v for k, v in tol.items() if k != "tolerationSeconds"}

    stripped = [strip(t) for t in new]
    if any(strip(t) not in stripped for t in old):
        return [forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds")]
    return validate_tolerations(new, "spec.tolerations")


def _only_deleted_gates(new: Obj, old: Obj) -> list[Cause]:
    old_names = {as_str(g.get("name")) for g in maps(old.get("schedulingGates"))}
    return [forbidden(f"spec.schedulingGates[{i}].name",
                      f"only deletion is allowed, but found new scheduling gate '{as_str(g.get('name'))}'")
            for i, g in enumerate(maps(new.get("schedulingGates"))) if as_str(g.get("name")) not in old_names]


def _munge(new: Obj, old: Obj) -> Obj:
    """`new` with the fields an update may change set back to their old values."""
    munged = copy.deepcopy(new)
    for field in ("containers", "initContainers"):
        for ctr, old_ctr in zip(as_list(munged.get(field)), maps(old.get(field)), strict=False):
            if isinstance(ctr, dict):
                _set(ctr, "image", old_ctr.get("image"))
    for field in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        _set(munged, field, old.get(field))
    old_grace, new_grace = as_int(old.get("terminationGracePeriodSeconds")), munged.get("terminationGracePeriodSeconds")
    if old_grace is not None and old_grace < 0 and new_grace == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    return munged


def semantic(value: Any) -> Any:
    """A value as upstream's semantic equality sees it: nulls and empty lists are the same as unset."""
    if isinstance(value, dict):
        return {k: semantic(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def _set(obj: Obj, key: str, value: Any) -> None:
    if value is None:
        obj.pop(key, None)
    else:
        obj[key] = copy.deepcopy(value)


def spec_diff(old: Any, new: Any) -> str:
    """A readable diff of two specs (upstream prints a go-cmp diff of its internal types)."""
    lines = ["  core.PodSpec{"] + [f"  \t{line}" for line in _diff_lines(old, new, "")] + ["  }"]
    return "\n".join(lines) + "\n"


def _diff_lines(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in list(old) + [k for k in new if k not in old]:
            out += _diff_lines(old.get(key), new.get(key), child(path, key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += _diff_lines(a, b, index(path, i))
        return out
    if old == new:
        return []
    return [f"- {path}: {_show(old)}", f"+ {path}: {_show(new)}"]


def _show(value: Any) -> str:
    return "nil" if value is None else go_json(value)


def binding_target(binding: Obj) -> list[Cause]:
    target = m(binding, "target")
    errs: list[Cause] = []
    kind = as_str(target.get("kind"))
    if kind and kind != "Node":
        errs.append(not_supported("target.kind", kind, ("Node", "<empty>")))
    if not as_str(target.get("name")):
        errs.append(required("target.name"))
    return errs

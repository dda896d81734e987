"""ObjectMeta validation (create and update), labels, annotations and label selectors.

Follows `k8s.io/apimachinery/pkg/api/validation/objectmeta.go` plus the extra finalizer check
`pkg/apis/core/validation` adds, and the generic path-segment check the registry runs on every
object after its kind's own validation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubelite.objects.errors import Cause
from kubelite.objects.validation import formats as fmt
from kubelite.objects.validation.access import Obj, as_int, as_list, as_map, as_str, as_str_map
from kubelite.objects.validation.fielderr import (
    GoStruct,
    child,
    forbidden,
    immutable,
    index,
    invalid,
    invalid_each,
    non_negative,
    required,
    too_long,
)

NameFn = Callable[[str, bool], list[str]]

TOTAL_ANNOTATION_SIZE = 256 * 1024
STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")
_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist")


def _mask_trailing_dash(name: str) -> str:
    return name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return fmt.is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return fmt.is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return fmt.is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    return fmt.is_path_segment_name(name, prefix)


def validate_object_meta(meta: Obj, namespaced: bool, name_fn: NameFn, path: str = "metadata", *,
                         kube_finalizers: bool = True) -> list[Cause]:
    """Create-time metadata checks. A missing name is fine when generateName is set: the server
    generates the name before validating, as upstream does."""
    errs: list[Cause] = []
    generate = as_str(meta.get("generateName"))
    name = as_str(meta.get("name"))
    if generate:
        errs += invalid_each(child(path, "generateName"), generate, name_fn(generate, True))
    if name:
        errs += invalid_each(child(path, "name"), name, name_fn(name, False))
    elif not generate:
        errs.append(required(child(path, "name"), "name or generateName is required"))
    errs += _namespace(meta, namespaced, path)
    errs += _common(meta, path)
    errs += validate_finalizers(as_list(meta.get("finalizers")), child(path, "finalizers"))
    if kube_finalizers:
        errs += _kube_finalizers(meta, path)
    return errs


def _namespace(meta: Obj, namespaced: bool, path: str) -> list[Cause]:
    ns = as_str(meta.get("namespace"))
    if not namespaced:
        return [forbidden(child(path, "namespace"), "not allowed on this type")] if ns else []
    if not ns:
        return [required(child(path, "namespace"))]
    return invalid_each(child(path, "namespace"), ns, name_is_dns_label(ns, False))


def _common(meta: Obj, path: str) -> list[Cause]:
    errs = non_negative(child(path, "generation"), meta.get("generation"))
    errs += validate_labels(meta.get("labels"), child(path, "labels"))
    errs += validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs += validate_owner_references(as_list(meta.get("ownerReferences")), child(path, "ownerReferences"))
    return errs


def _kube_finalizers(meta: Obj, path: str) -> list[Cause]:
    errs = []
    for i, name in enumerate(as_list(meta.get("finalizers"))):
        errs += validate_kube_finalizer_name(as_str(name), index(child(path, "finalizers"), i))
    return errs


def validate_kube_finalizer_name(name: str, path: str) -> list[Cause]:
    if "/" not in name and name not in STANDARD_FINALIZERS:
        return [invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified")]
    return []


def validate_object_meta_update(new: Obj, old: Obj, path: str = "metadata", *,
                                kube_finalizers: bool = True) -> list[Cause]:
    """Update-time metadata checks. Server-owned fields the client left out count as unchanged,
    as the registry copies them from the stored object before validating."""
    errs: list[Cause] = []
    if old.get("deletionTimestamp"):
        errs += _no_new_finalizers(new, old, child(path, "finalizers"))
    errs += non_negative(child(path, "generation"), new.get("generation"))
    new_gen, old_gen = as_int(new.get("generation")), as_int(old.get("generation"))
    if new_gen is not None and old_gen is not None and new_gen < old_gen:
        errs.append(invalid(child(path, "generation"), new_gen, "must not be decremented"))
    for field in ("name", "namespace"):
        if as_str(new.get(field)) != as_str(old.get(field)):
            errs.append(immutable(child(path, field), as_str(new.get(field))))
    for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if new.get(field) is not None and new.get(field) != old.get(field):
            errs.append(immutable(child(path, field), new.get(field)))
    errs += validate_labels(new.get("labels"), child(path, "labels"))
    errs += validate_annotations(new.get("annotations"), child(path, "annotations"))
    errs += validate_owner_references(as_list(new.get("ownerReferences")), child(path, "ownerReferences"))
    if kube_finalizers:
        errs += _kube_finalizers(new, path)
    return errs


def _no_new_finalizers(new: Obj, old: Obj, path: str) -> list[Cause]:
    extra = sorted(set(map(str, as_list(new.get("finalizers")))) - set(map(str, as_list(old.get("finalizers")))))
    if not extra:
        return []
    listed = ", ".join(f'"{e}"' for e in extra)
    return [forbidden(path, "no new finalizers can be added if the object is being deleted, "
                            f"found new finalizers []string{{{listed}}}")]


def validate_generic_meta(meta: Obj, namespaced: bool, path: str = "metadata") -> list[Cause]:
    """The registry's own check, run only when the kind's validation passed: names must be usable
    as a URL path segment."""
    return validate_object_meta(meta, namespaced, name_is_path_segment, path, kube_finalizers=False)


def validate_label_name(key: str, path: str) -> list[Cause]:
    return invalid_each(path, key, fmt.is_qualified_name(key))


def validate_labels(labels: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for key, value in as_map(labels).items():
        errs += validate_label_name(key, path)
        errs += invalid_each(path, as_str(value), fmt.is_label_value(as_str(value)))
    return errs


def validate_annotations(annotations: Any, path: str) -> list[Cause]:
    values = as_str_map(annotations)
    errs: list[Cause] = []
    for key in as_map(annotations):
        errs += invalid_each(path, key, fmt.is_qualified_name(key.lower()))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in values.items())
    if size > TOTAL_ANNOTATION_SIZE:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE))
    return errs


def validate_owner_references(refs: list[Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    controller = ""
    for i, raw in enumerate(refs):
        ref = as_map(raw)
        errs += _owner_reference(ref, index(path, i))
        if ref.get("controller") is True:
            name = f"{as_str(ref.get('kind'))}/{as_str(ref.get('name'))}"
            if controller:
                errs.append(invalid(path, [_owner_struct(as_map(r)) for r in refs],
                                    'Only one reference can have Controller set to true. Found "true" in '
                                    f"references for {controller} and {name}"))
            else:
                controller = name
    return errs


def _owner_reference(ref: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    api_version, kind = as_str(ref.get("apiVersion")), as_str(ref.get("kind"))
    group, _, version = api_version.rpartition("/")
    if not api_version:
        errs.append(required(child(path, "apiVersion"), "must not be empty"))
    elif api_version.count("/") > 1 or not version:
        errs.append(invalid(child(path, "apiVersion"), api_version, "must be <group>/<version> or <version>"))
    for field in ("kind", "name", "uid"):
        if not as_str(ref.get(field)):
            errs.append(required(child(path, field), "must not be empty"))
    if group == "" and version == "v1" and kind == "Event":
        errs.append(invalid(path, _owner_struct(ref), "/v1, Kind=Event is disallowed from being an owner"))
    return errs


def _owner_struct(ref: Obj) -> GoStruct:
    out = GoStruct((k, ref.get(k, "")) for k in ("apiVersion", "kind", "name", "uid"))
    for k in ("controller", "blockOwnerDeletion"):
        if ref.get(k) is not None:
            out[k] = ref[k]
    return out


def validate_finalizers(finalizers: list[Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    names = [as_str(f) for f in finalizers]
    for name in names:
        errs += invalid_each(path, name, fmt.is_qualified_name(name))
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(invalid(path, names, "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def validate_label_selector(selector: Any, path: str) -> list[Cause]:
    sel = as_map(selector)
    errs = validate_labels(sel.get("matchLabels"), child(path, "matchLabels"))
    for i, expr in enumerate(as_list(sel.get("matchExpressions"))):
        errs += _selector_requirement(as_map(expr), index(child(path, "matchExpressions"), i))
    return errs


def _selector_requirement(req: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    op, values = as_str(req.get("operator")), [as_str(v) for v in as_list(req.get("values"))]
    if op in ("In", "NotIn") and not values:
        errs.append(required(child(path, "values"), "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist") and values:
        errs.append(forbidden(child(path, "values"),
                              "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    elif op not in _SELECTOR_OPS:
        errs.append(invalid(child(path, "operator"), op, "not a valid selector operator"))
    errs += validate_label_name(as_str(req.get("key")), child(path, "key"))
    for i, value in enumerate(values):
        errs += invalid_each(index(child(path, "values"), i), value, fmt.is_label_value(value))
    return errs


def selector_struct(selector: Any) -> GoStruct:
    """A LabelSelector as Go marshals it (for bad-value messages)."""
    sel = as_map(selector)
    out = GoStruct()
    if sel.get("matchLabels"):
        out["matchLabels"] = sel["matchLabels"]
    if sel.get("matchExpressions"):
        out["matchExpressions"] = [_requirement_struct(as_map(r)) for r in as_list(sel["matchExpressions"])]
    return out


def _requirement_struct(req: Obj) -> GoStruct:
    out = GoStruct(key=req.get("key", ""), operator=req.get("operator", ""))
    if req.get("values"):
        out["values"] = req["values"]
    return out


def selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """Whether a (valid) LabelSelector selects `labels`."""
    sel = as_map(selector)
    for key, value in as_map(sel.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    return all(_requirement_matches(as_map(r), labels) for r in as_list(sel.get("matchExpressions")))


def _requirement_matches(req: Obj, labels: dict[str, str]) -> bool:
    key, op, values = as_str(req.get("key")), req.get("operator"), as_list(req.get("values"))
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    return key not in labels

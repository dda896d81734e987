"""apps/v1 Deployment and ReplicaSet validation (upstream `pkg/apis/apps/validation` plus the
strategies' selector immutability)."""

from __future__ import annotations

import re
from typing import Any

from kubelite.objects.errors import Cause
from kubelite.objects.validation.access import Obj, as_int, as_list, as_map, as_str_map, m
from kubelite.objects.validation.fielderr import (
    GoStruct,
    child,
    forbidden,
    immutable,
    invalid,
    invalid_each,
    non_negative,
    not_supported,
    required,
)
from kubelite.objects.validation.formats import is_valid_percent
from kubelite.objects.validation.meta import (
    name_is_dns_subdomain,
    selector_matches,
    selector_struct,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.objects.validation.pod import validate_pod_template


def validate_deployment(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = m(obj, "spec")
    errs = _meta(obj, old)
    errs += non_negative("spec.replicas", spec.get("replicas"))
    errs += _selector_and_template(spec)
    errs += _strategy(m(spec, "strategy"), "spec.strategy")
    errs += non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    errs += non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    errs += _progress_deadline(spec)
    return errs + _selector_immutable(obj, old)


def validate_replica_set(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = m(obj, "spec")
    errs = _meta(obj, old)
    errs += non_negative("spec.replicas", spec.get("replicas"))
    errs += non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    errs += _selector_and_template(spec)
    return errs + _selector_immutable(obj, old)


def _meta(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        return validate_object_meta(m(obj, "metadata"), True, name_is_dns_subdomain)
    return validate_object_meta_update(m(obj, "metadata"), m(old, "metadata"))


def _selector_and_template(spec: Obj) -> list[Cause]:
    selector, errs = spec.get("selector"), []
    if not isinstance(selector, dict):
        errs.append(required("spec.selector"))
    else:
        sel_errs = validate_label_selector(selector, "spec.selector")
        errs += sel_errs
        if not as_map(selector.get("matchLabels")) and not as_list(selector.get("matchExpressions")):
            errs.append(invalid("spec.selector", selector_struct(selector), "empty selector is invalid for deployment"))
        if sel_errs:
            return errs + [invalid("spec.selector", selector_struct(selector), "invalid label selector")]
    return errs + _template(spec, selector)


def _template(spec: Obj, selector: Any) -> list[Cause]:
    template, errs = m(spec, "template"), []
    labels = as_str_map(m(template, "metadata").get("labels"))
    empty = isinstance(selector, dict) and not as_map(selector.get("matchLabels")) and \
        not as_list(selector.get("matchExpressions"))
    # a missing selector selects nothing, so upstream reports the mismatch too
    if not empty and (not isinstance(selector, dict) or not selector_matches(selector, labels)):
        raw = m(template, "metadata").get("labels")
        errs.append(invalid("spec.template.metadata.labels", raw if isinstance(raw, dict) else None,
                            "`selector` does not match template `labels`"))
    errs += validate_pod_template(template, "spec.template")
    policy = m(template, "spec").get("restartPolicy")
    if policy != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy", policy or "", ("Always",)))
    if m(template, "spec").get("activeDeadlineSeconds") is not None:
        # upstream validates deployment templates as replica set templates, message included
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in ReplicaSet is not Supported"))
    return errs


def _strategy(strategy: Obj, path: str) -> list[Cause]:
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [forbidden(child(path, "rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if kind == "RollingUpdate":
        if not isinstance(rolling, dict):
            return [required(child(path, "rollingUpdate"), "this should be defaulted and never be nil")]
        return _rolling_update(rolling, child(path, "rollingUpdate"))
    return [not_supported(path, _strategy_struct(strategy), ("Recreate", "RollingUpdate"))]


def _strategy_struct(strategy: Obj) -> GoStruct:
    # upstream reports the internal struct, which has no json tags
    rolling = strategy.get("rollingUpdate")
    shown = None if not isinstance(rolling, dict) else \
        GoStruct(MaxUnavailable=rolling.get("maxUnavailable", 0), MaxSurge=rolling.get("maxSurge", 0))
    return GoStruct(Type=strategy.get("type", ""), RollingUpdate=shown)


def _rolling_update(rolling: Obj, path: str) -> list[Cause]:
    unavailable, surge = rolling.get("maxUnavailable", 0), rolling.get("maxSurge", 0)
    errs = _int_or_percent(unavailable, child(path, "maxUnavailable"))
    errs += _int_or_percent(surge, child(path, "maxSurge"))
    if _int_or_percent_value(unavailable) == 0 and _int_or_percent_value(surge) == 0:
        errs.append(invalid(child(path, "maxUnavailable"), unavailable, "may not be 0 when `maxSurge` is 0"))
    percent = _percent(unavailable)
    if percent is not None and percent > 100:
        errs.append(invalid(child(path, "maxUnavailable"), unavailable, "must not be greater than 100%"))
    return errs


def _int_or_percent(value: Any, path: str) -> list[Cause]:
    if isinstance(value, str):
        return invalid_each(path, value, is_valid_percent(value))
    return non_negative(path, as_int(value))


def _percent(value: Any) -> int | None:
    if isinstance(value, str) and re.fullmatch(r"[0-9]+%", value):
        return int(value[:-1])
    return None


def _int_or_percent_value(value: Any) -> int:
    percent = _percent(value)
    if percent is not None:
        return percent
    if isinstance(value, str):
        return int(value) if re.fullmatch(r"-?[0-9]+", value) else 0
    return as_int(value) or 0


def _progress_deadline(spec: Obj) -> list[Cause]:
    deadline = as_int(spec.get("progressDeadlineSeconds"))
    if deadline is None:
        return []
    errs = non_negative("spec.progressDeadlineSeconds", deadline)
    if deadline <= (as_int(spec.get("minReadySeconds")) or 0):
        errs.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    return errs


def _selector_immutable(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        return []
    new_sel, old_sel = m(obj, "spec").get("selector"), m(old, "spec").get("selector")
    if _normal_selector(new_sel) != _normal_selector(old_sel):
        return [immutable("spec.selector", selector_struct(new_sel) if isinstance(new_sel, dict) else None)]
    return []


def _normal_selector(selector: Any) -> Any:
    if not isinstance(selector, dict):
        return None
    return (as_map(selector.get("matchLabels")), as_list(selector.get("matchExpressions")))

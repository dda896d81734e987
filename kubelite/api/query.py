"""Query parameters of list, watch, write and delete requests, parsed once and validated.

Unknown parameters are ignored, as kube-apiserver does (kubectl adds some, e.g. `timeout`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubelite.api.objectmeta import Obj, meta
from kubelite.api.storage import DeleteOptions, ListOptions
from kubelite.objects.errors import BadRequest
from kubelite.objects.registry import ResourceType

Query = Mapping[str, str]

FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


def flag(query: Query, name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")


def int_param(query: Query, name: str, default: int | None = None) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f'invalid value for {name}: "{raw}" is not an integer') from None


def dry_run(query: Query, body: Mapping[str, Any] | None = None) -> bool:
    values = [query.get("dryRun", "")]
    if body and isinstance(body.get("dryRun"), list):
        values += [str(v) for v in body["dryRun"]]
    for value in values:
        if value and value != "All":
            raise BadRequest(f'unsupported dryRun value "{value}": the only supported value is "All"')
    return any(values)


def field_validation(query: Query) -> str:
    value = query.get("fieldValidation") or "Warn"
    if value not in FIELD_VALIDATION:
        raise BadRequest(f'fieldValidation "{value}" is not one of Strict, Warn, Ignore')
    return value


@dataclass(frozen=True)
class Filter:
    """Label and field selectors of a list or watch, compiled once."""

    label_text: str
    field_text: str
    matches: Callable[[Obj], bool]
    only_name: str | None  # set when the field selector pins metadata.name


def make_filter(rt: ResourceType, query: Query) -> Filter:
    from kubelite.objects import selectors

    label_text, field_text = query.get("labelSelector", ""), query.get("fieldSelector", "")
    labels = selectors.parse_label_selector(label_text)
    fields = selectors.validate_field_selector(rt.group_resource, selectors.parse_field_selector(field_text))
    only_name = next((value for key, op, value in _requirements(fields)
                      if key == "metadata.name" and op in ("=", "==")), None)

    def matches(obj: Obj) -> bool:
        if label_text and not labels.matches(meta(obj).get("labels") or {}):
            return False
        return not field_text or fields.matches(selectors.object_fields(rt.group_resource, obj))

    return Filter(label_text, field_text, matches, only_name)


def _requirements(fields: Any) -> list[tuple[str, str, str]]:
    return [(r.field, r.operator, r.value) for r in fields.requirements]


def list_options(rt: ResourceType, query: Query, flt: Filter) -> ListOptions:
    limit = int_param(query, "limit", 0) or 0
    if limit < 0:
        raise BadRequest("limit must be a non-negative integer")
    match = query.get("resourceVersionMatch", "")
    if match not in ("", "Exact", "NotOlderThan"):
        raise BadRequest(f'invalid resourceVersionMatch "{match}": supported are Exact and NotOlderThan')
    rv = query.get("resourceVersion", "")
    if rv and not rv.isdigit():
        raise BadRequest(f'invalid resourceVersion "{rv}": it must be a decimal number')
    if match and not rv:
        raise BadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
    if query.get("continue") and rv and rv != "0":
        raise BadRequest("specifying resource version is not allowed when using continue")
    return ListOptions(matches=flt.matches, limit=limit, continue_token=query.get("continue", ""),
                       resource_version=rv, resource_version_match=match, only_name=flt.only_name)


def delete_options(query: Query, body: Mapping[str, Any] | None) -> DeleteOptions:
    body = body or {}
    grace = body.get("gracePeriodSeconds")
    if grace is None:
        grace = int_param(query, "gracePeriodSeconds")
    elif not isinstance(grace, int):
        raise BadRequest("gracePeriodSeconds must be an integer")
    propagation = body.get("propagationPolicy") or query.get("propagationPolicy") or None
    if body.get("orphanDependents") is not None or query.get("orphanDependents"):
        orphan = body.get("orphanDependents")
        orphan = flag(query, "orphanDependents") if orphan is None else orphan
        propagation = propagation or ("Orphan" if orphan else "Background")
    if propagation not in (None, "Orphan", "Background", "Foreground"):
        raise BadRequest(f'propagationPolicy "{propagation}" is not one of Orphan, Background, Foreground')
    pre = body.get("preconditions") or {}
    if not isinstance(pre, dict):
        raise BadRequest("preconditions must be an object with uid and/or resourceVersion")
    return DeleteOptions(grace_period=grace, propagation=propagation, uid=pre.get("uid"),
                         resource_version=pre.get("resourceVersion"), dry_run=dry_run(query, body))

"""Event validation, core/v1 (lenient, as upstream keeps it for old clients) and events.k8s.io/v1
(strict). events.k8s.io/v1 objects are read through the core field names they convert to, and
errors use the core names, as upstream reports them."""

from __future__ import annotations

from kubelite.objects.errors import Cause
from kubelite.objects.validation.access import Obj, as_int, as_str, m
from kubelite.objects.validation.fielderr import immutable, invalid, invalid_each, required
from kubelite.objects.validation.formats import is_dns1123_subdomain, is_qualified_name
from kubelite.objects.validation.meta import (
    name_is_dns_subdomain,
    validate_object_meta,
    validate_object_meta_update,
)

_FROM_EVENTS_V1 = {"regarding": "involvedObject", "note": "message", "deprecatedSource": "source",
                   "deprecatedFirstTimestamp": "firstTimestamp", "deprecatedLastTimestamp": "lastTimestamp",
                   "deprecatedCount": "count"}
_IMMUTABLE = ("involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count",
              "type", "eventTime", "action", "related", "reportingController", "reportingInstance")
_LIMITS = (("reportingInstance", 128), ("action", 128), ("reason", 128), ("message", 1024))


def as_core_event(obj: Obj) -> Obj:
    """An events.k8s.io/v1 Event with its fields renamed to core/v1's."""
    out = {_FROM_EVENTS_V1.get(k, k): v for k, v in obj.items()}
    if "reportingController" not in out and "reportingComponent" in obj:
        out["reportingController"] = obj["reportingComponent"]
    return out


def validate_core_event(obj: Obj, old: Obj | None) -> list[Cause]:
    return legacy_event(obj)


def validate_events_v1_event(obj: Obj, old: Obj | None) -> list[Cause]:
    event = as_core_event(obj)
    errs = legacy_event(event)
    if old is None:
        errs += validate_object_meta(m(event, "metadata"), True, name_is_dns_subdomain)
        errs += _series(event)
        if not event.get("eventTime"):
            errs.append(required("eventTime"))
        if event.get("type") not in ("Normal", "Warning"):
            errs.append(invalid("type", "", f"has invalid value: {as_str(event.get('type'))}"))
        return errs
    old_event = as_core_event(old)
    errs += validate_object_meta_update(m(event, "metadata"), m(old_event, "metadata"))
    if event.get("series") != old_event.get("series"):
        errs += _series(event)
    return errs + [immutable(f, event.get(f)) for f in _IMMUTABLE if event.get(f) != old_event.get(f)]


def _series(event: Obj) -> list[Cause]:
    series = event.get("series")
    if not isinstance(series, dict):
        return []
    errs = [] if (as_int(series.get("count")) or 0) >= 2 else [invalid("series.count", "", "should be at least 2")]
    return errs + ([] if series.get("lastObservedTime") else [required("series.lastObservedTime")])


def legacy_event(event: Obj) -> list[Cause]:
    namespace = as_str(m(event, "metadata").get("namespace"))
    involved_ns = as_str(m(event, "involvedObject").get("namespace"))
    errs: list[Cause] = []
    if not event.get("eventTime"):
        if (involved_ns and namespace != involved_ns) or (not involved_ns and namespace not in ("", "default")):
            errs.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    else:
        errs += _new_style_event(event, namespace, involved_ns)
    return errs + invalid_each("namespace", namespace, is_dns1123_subdomain(namespace))


def _new_style_event(event: Obj, namespace: str, involved_ns: str) -> list[Cause]:
    errs: list[Cause] = []
    if not involved_ns and namespace not in ("default", "kube-system"):
        errs.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    controller = as_str(event.get("reportingController"))
    if not controller:
        errs.append(required("reportingController"))
    errs += invalid_each("reportingController", controller, is_qualified_name(controller))
    for field, limit in _LIMITS:
        value = as_str(event.get(field))
        if not value and field != "message":
            errs.append(required(field))
        if len(value) > limit:
            errs.append(invalid(field, "", f"can have at most {limit} characters"))
    return errs

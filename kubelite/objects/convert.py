"""Conversion between versions that share one storage bucket.

core/v1 Event and events.k8s.io/v1 Event are one resource upstream, stored once and converted on
the way in and out. We store the core/v1 form; the fields map one to one by name.
"""

from __future__ import annotations

from typing import Any

from kubelite.objects.registry import ResourceType

_EVENTS_V1_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_CORE_TO_EVENTS_V1 = {v: k for k, v in _EVENTS_V1_TO_CORE.items()}


def _rename(obj: dict[str, Any], table: dict[str, str]) -> dict[str, Any]:
    return {table.get(k, k): v for k, v in obj.items()}


def to_storage(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The stored form of an object the client sent as `rt`'s version."""
    if rt.group == "events.k8s.io":
        out = _rename(obj, _EVENTS_V1_TO_CORE)
        out["apiVersion"], out["kind"] = "v1", "Event"
        return out
    return obj


def from_storage(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The stored object as `rt`'s version."""
    if rt.group == "events.k8s.io":
        out = _rename(obj, _CORE_TO_EVENTS_V1)
        out["apiVersion"], out["kind"] = rt.api_version, rt.kind
        return out
    return obj

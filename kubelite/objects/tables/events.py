"""The event table, shared by core/v1 and events.k8s.io/v1 Events.

Upstream stores both versions as one internal Event and prints it with `printEvent`, so an
events.k8s.io/v1 object is first mapped onto the core/v1 field names (regarding -> involvedObject,
note -> message, deprecatedCount -> count, ...) and then printed by the same function.
"""

from __future__ import annotations

from datetime import datetime

from kubelite.objects.tables.common import (
    NAME_DOC,
    Cell,
    Column,
    Obj,
    Printer,
    get,
    integer,
    name_of,
    present,
    text,
)
from kubelite.objects.tables.duration import parse_time, since

COLUMNS = (
    Column("Last Seen", description="The time at which the most recent occurrence of this event was recorded."),
    Column("Type", description="Type of this event (Normal, Warning), new types could be added in the future"),
    Column("Reason", description="This should be a short, machine understandable string that gives the "
                                 "reason for the transition into the object's current status."),
    Column("Object", description="The object that this event is about."),
    Column("Subobject", priority=1,
           description="If referring to a piece of an object instead of an entire object, this string "
                       "should contain a valid JSON/Go field access statement, such as "
                       "desiredState.manifest.containers[2]."),
    Column("Source", priority=1,
           description="The component reporting this event. Should be a short machine understandable string."),
    Column("Message", description="A human-readable description of the status of this operation."),
    Column("First Seen", priority=1,
           description="The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
    Column("Count", priority=1, description="The number of times this event has occurred."),
    Column("Name", priority=1, format="name", description=NAME_DOC),
)

# events.k8s.io/v1 field -> core/v1 field, as the internal conversion maps them.
_EVENTS_V1_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}


def as_core_event(event: Obj) -> dict[str, object]:
    """An events.k8s.io/v1 Event re-keyed with core/v1 field names."""
    return {_EVENTS_V1_TO_CORE.get(key, key): value for key, value in event.items()}


def _source(event: Obj) -> str:
    component = text(event, "source", "component") or text(event, "reportingComponent")
    instance = text(event, "source", "host") or text(event, "reportingInstance")
    return f"{component}, {instance}" if instance else component


def _target(event: Obj) -> str:
    kind = text(event, "involvedObject", "kind").lower()
    name = text(event, "involvedObject", "name")
    return f"{kind}/{name}" if name else kind


def _first_last_count(event: Obj, now: datetime) -> tuple[str, str, int]:
    first_time = parse_time(get(event, "firstTimestamp"))
    first = since(first_time if first_time is not None else get(event, "eventTime"), now)
    last_time = parse_time(get(event, "lastTimestamp"))
    last = since(last_time, now) if last_time is not None else first
    total = integer(event, "count")
    if present(event, "series"):
        last = since(get(event, "series", "lastObservedTime"), now)
        total = integer(event, "series", "count")
    elif total == 0:
        total = 1  # singleton events of the new API carry no count
    return first, last, total


def event_cells(event: Obj, now: datetime) -> list[Cell]:
    first, last, total = _first_last_count(event, now)
    return [
        last, text(event, "type"), text(event, "reason"), _target(event),
        text(event, "involvedObject", "fieldPath"), _source(event), text(event, "message").strip(),
        first, total, name_of(event),
    ]


def events_v1_cells(event: Obj, now: datetime) -> list[Cell]:
    return event_cells(as_core_event(event), now)


PRINTERS = {
    "events": Printer(COLUMNS, event_cells),
    "events.events.k8s.io": Printer(COLUMNS, events_v1_cells),
}

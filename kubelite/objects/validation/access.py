"""Type-tolerant reads of a decoded object.

Validation runs on objects that `check_schema` has already vetted, but it must never crash on one
that was not: every read here falls back to the zero value of the Go field when the JSON value is
missing, null or of the wrong type, which is what upstream's typed structs would hold.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def as_map(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int | None:
    """An integer field; None when unset (Go's nil pointer) or not an integer."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() else None


def as_str_map(value: Any) -> dict[str, str]:
    return {k: v for k, v in as_map(value).items() if isinstance(v, str)}


def m(obj: Any, *keys: str) -> Obj:
    """The nested map at `keys`, {} when any step is missing."""
    for key in keys:
        obj = as_map(obj).get(key)
    return as_map(obj)


def maps(value: Any) -> list[Obj]:
    """The list items of a list of structs, each item coerced to a map."""
    return [as_map(item) for item in as_list(value)]

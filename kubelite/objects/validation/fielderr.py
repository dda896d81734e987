"""Field paths and the causes upstream's `field.Error` constructors build, with Go's formatting.

A cause message is upstream's `ErrorBody()`: the error type's label, the bad value rendered the way
Go prints it (`%q` for strings, `%v` for numbers and booleans, `json.Marshal` for anything else)
and the detail. Getting these byte-for-byte right is what lets kubectl users see the messages they
know, so the helpers here are the only place a message is put together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from kubelite.objects.errors import Cause

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
NOT_FOUND = "FieldValueNotFound"

IMMUTABLE = "field is immutable"
NEGATIVE = "must be greater than or equal to 0"

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


class GoStruct(dict[str, Any]):
    """A dict marshalled in insertion order, like a Go struct (plain dicts are Go maps: sorted)."""


def child(path: str, *names: str) -> str:
    """`path.name...`; the empty path is the root."""
    for name in names:
        path = f"{path}.{name}" if path else name
    return path


def index(path: str, i: int | str) -> str:
    """`path[i]`: a list index or (upstream's `Key`) a map key, unquoted."""
    return f"{path}[{i}]"


def go_quote(value: str) -> str:
    """Go's `strconv.Quote`."""
    out = []
    for ch in value:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def go_json(value: Any) -> str:
    """Go's `json.Marshal`: compact, map keys sorted, struct fields in order, HTML-safe."""
    text = json.dumps(_go_ordered(value), separators=(",", ":"), ensure_ascii=False)
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                     ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return text


def _go_ordered(value: Any) -> Any:
    if isinstance(value, GoStruct):
        return {k: _go_ordered(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {k: _go_ordered(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_go_ordered(v) for v in value]
    return value


def render(value: Any) -> str:
    """A bad value as upstream's ErrorBody prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_number(value)
    if isinstance(value, str):
        return go_quote(value)
    return go_json(value)


def _go_number(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _with_detail(text: str, detail: str) -> str:
    return f"{text}: {detail}" if detail else text


def required(path: str, detail: str = "") -> Cause:
    return Cause(REQUIRED, _with_detail("Required value", detail), path)


def invalid(path: str, value: Any, detail: str = "") -> Cause:
    return Cause(INVALID, _with_detail(f"Invalid value: {render(value)}", detail), path)


def immutable(path: str, value: Any) -> Cause:
    return invalid(path, value, IMMUTABLE)


def not_supported(path: str, value: Any, valid: Iterable[str]) -> Cause:
    quoted = ", ".join(go_quote(v) for v in valid)
    detail = f"supported values: {quoted}" if quoted else ""
    return Cause(NOT_SUPPORTED, _with_detail(f"Unsupported value: {render(value)}", detail), path)


def duplicate(path: str, value: Any, detail: str = "") -> Cause:
    return Cause(DUPLICATE, _with_detail(f"Duplicate value: {render(value)}", detail), path)


def forbidden(path: str, detail: str = "") -> Cause:
    return Cause(FORBIDDEN, _with_detail("Forbidden", detail), path)


def not_found(path: str, value: Any, detail: str = "") -> Cause:
    return Cause(NOT_FOUND, _with_detail(f"Not found: {render(value)}", detail), path)


def too_long(path: str, max_bytes: int) -> Cause:
    unit = "byte" if max_bytes == 1 else "bytes"
    return Cause(TOO_LONG, f"Too long: may not be more than {max_bytes} {unit}", path)


def too_many(path: str, actual: int, maximum: int) -> Cause:
    unit = "item" if maximum == 1 else "items"
    return Cause(TOO_MANY, f"Too many: {actual}: must have at most {maximum} {unit}", path)


def invalid_each(path: str, value: Any, messages: Iterable[str]) -> list[Cause]:
    """One Invalid cause per message of a format check (upstream's `for _, msg := range ...`)."""
    return [invalid(path, value, msg) for msg in messages]


def non_negative(path: str, value: Any) -> list[Cause]:
    return [invalid(path, value, NEGATIVE)] if _is_int(value) and value < 0 else []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def exactly_one(obj: dict[str, Any], kinds: Iterable[str], path: str, what: str,
                check: Callable[[str, Any, str], list[Cause]]) -> list[Cause]:
    """Upstream's one-of rule (volume sources, handler types): the first member set is checked,
    every further one is forbidden, and none at all is required."""
    errs: list[Cause] = []
    count = 0
    for kind in kinds:
        if not isinstance(obj.get(kind), dict):
            continue
        if count:
            errs.append(forbidden(child(path, kind), f"may not specify more than 1 {what}"))
            continue
        count += 1
        errs += check(kind, obj[kind], child(path, kind))
    if not count:
        errs.append(required(path, f"must specify a {what}"))
    return errs

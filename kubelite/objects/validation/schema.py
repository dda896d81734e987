"""Decoding checks driven by the upstream OpenAPI definitions: unknown fields and JSON type errors.

What upstream's strict JSON decoder reports, in its words: `unknown field "spec.foo"` (strict
decoding; the path has list indices and map keys) and, for values of the wrong JSON type,
`json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32` (the
innermost struct, then the path of field names without indices). Values with their own decoders
keep their own messages: quantities, timestamps and base64 `[]byte` data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kubelite.objects import schema as openapi
from kubelite.objects.registry import ResourceType
from kubelite.objects.validation.fielderr import go_quote
from kubelite.objects.validation.quantity import QuantityError, parse_quantity

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
MICRO_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1), "int": (-(2**63), 2**63 - 1)}
_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


@dataclass
class SchemaReport:
    """Problems the decoder finds. Upstream reports the first type error if there is one (and then
    no unknown fields); otherwise all unknown fields as one strict decoding error."""

    unknown_fields: list[str] = field(default_factory=list)
    type_errors: list[str] = field(default_factory=list)
    # where each unknown field sits: (the map holding it, its key), so callers can drop them
    unknown_locations: list[tuple[dict[str, Any], str]] = field(default_factory=list, repr=False)

    def drop_unknown_fields(self) -> None:
        """Remove the unknown fields from the checked object, as Go's non-strict decoder does."""
        for container, key in self.unknown_locations:
            container.pop(key, None)

    @property
    def ok(self) -> bool:
        return not self.unknown_fields and not self.type_errors


@dataclass(frozen=True)
class _Ctx:
    strict: str  # the strict path: `spec.containers[0].name`
    fields: tuple[str, ...]  # the type-error path: field names only
    struct: str  # the Go struct the current field belongs to


def check_schema(rt: ResourceType, obj: dict[str, Any]) -> SchemaReport:
    report = SchemaReport()
    root = openapi.definition(rt.definition) if rt.definition else {}
    if root:
        _walk(obj, {"$ref": openapi.REF_PREFIX + rt.definition}, _Ctx("", (), ""), report)
    return report


def _walk(value: Any, schema: openapi.Schema, ctx: _Ctx, report: SchemaReport) -> None:
    if value is None:
        return
    name = openapi.ref_name(schema)
    special = _SPECIAL.get(name or "")
    if special is not None:
        special(value, ctx, report)
        return
    resolved = openapi.resolve(schema)
    types = openapi.types_of(resolved)
    if "object" in types:
        _object(value, resolved, name, go_type(schema), ctx, report)
    elif "array" in types:
        _array(value, resolved, ctx, report)
    elif types:
        _scalar(value, resolved, types, ctx, report)


def _object(value: Any, schema: openapi.Schema, name: str | None, gotype: str, ctx: _Ctx,
            report: SchemaReport) -> None:
    if not isinstance(value, dict):
        _type_error(report, ctx, _kind(value), gotype)
        return
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    if schema.get("x-kubernetes-preserve-unknown-fields") or (props is None and not isinstance(extra, dict)):
        return
    struct = _short(name) if name else ctx.struct
    for key, item in value.items():
        strict = f"{ctx.strict}.{key}" if ctx.strict else key
        if props is not None and key in props:
            _walk(item, props[key], _Ctx(strict, (*ctx.fields, key), struct), report)
        elif isinstance(extra, dict):
            _walk(item, extra, _Ctx(strict, ctx.fields, ctx.struct), report)
        else:
            report.unknown_fields.append(f"unknown field {go_quote(strict)}")
            report.unknown_locations.append((value, key))


def _array(value: Any, schema: openapi.Schema, ctx: _Ctx, report: SchemaReport) -> None:
    if not isinstance(value, list):
        _type_error(report, ctx, _kind(value), go_type(schema))
        return
    items = schema.get("items") or {}
    for i, item in enumerate(value):
        _walk(item, items, _Ctx(f"{ctx.strict}[{i}]", ctx.fields, ctx.struct), report)


def _scalar(value: Any, schema: openapi.Schema, types: set[str], ctx: _Ctx, report: SchemaReport) -> None:
    gotype = go_type(schema)
    if "string" in types:
        if not isinstance(value, str):
            _type_error(report, ctx, _kind(value), gotype)
        elif schema.get("format") == "byte":
            _base64(value, report)
    elif "integer" in types:
        _integer(value, gotype, ctx, report)
    elif "number" in types:
        if isinstance(value, bool) or not isinstance(value, int | float):
            _type_error(report, ctx, _kind(value), gotype)
    elif "boolean" in types and not isinstance(value, bool):
        _type_error(report, ctx, _kind(value), gotype)


def _integer(value: Any, gotype: str, ctx: _Ctx, report: SchemaReport) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _type_error(report, ctx, _kind(value), gotype)
        return
    lo, hi = _INT_RANGES.get(gotype, _INT_RANGES["int64"])
    if (isinstance(value, float) and not value.is_integer()) or not lo <= value <= hi:
        _type_error(report, ctx, f"number {_number_text(value)}", gotype)


def _number_text(value: int | float) -> str:
    return str(value) if isinstance(value, int) or not value.is_integer() else str(int(value))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_error(report: SchemaReport, ctx: _Ctx, kind: str, gotype: str) -> None:
    where = f"Go struct field {ctx.struct}.{'.'.join(ctx.fields)}" if ctx.fields else "Go value"
    report.type_errors.append(f"json: cannot unmarshal {kind} into {where} of type {gotype}")


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def go_type(schema: openapi.Schema) -> str:
    """The Go type upstream decodes a schema into, as `reflect.Type.String()` prints it."""
    name = openapi.ref_name(schema)
    if name:
        parts = name.split(".")
        return f"{parts[-2]}.{parts[-1]}"
    resolved = openapi.resolve(schema)
    types = openapi.types_of(resolved)
    if "array" in types:
        return "[]" + go_type(resolved.get("items") or {})
    if "object" in types:
        extra = resolved.get("additionalProperties")
        if isinstance(extra, dict) and openapi.ref_name(extra) == QUANTITY:
            return "v1.ResourceList"
        return "map[string]" + (go_type(extra) if isinstance(extra, dict) else "interface {}")
    return _scalar_type(resolved, types)


def _scalar_type(schema: openapi.Schema, types: set[str]) -> str:
    fmt = schema.get("format")
    if "string" in types:
        return "[]uint8" if fmt == "byte" else "string"
    if "integer" in types:
        return fmt if fmt in ("int32", "int64") else "int"
    if "number" in types:
        return "float64" if fmt != "float" else "float32"
    return "bool" if "boolean" in types else "interface {}"


def _int_or_string(value: Any, ctx: _Ctx, report: SchemaReport) -> None:
    if not isinstance(value, str):
        _integer(value, "int32", ctx, report)


def _quantity(value: Any, ctx: _Ctx, report: SchemaReport) -> None:
    try:
        parse_quantity(value)
    except QuantityError as exc:
        report.type_errors.append(str(exc))


def _time(value: Any, ctx: _Ctx, report: SchemaReport, micro: bool = False) -> None:
    if not isinstance(value, str):
        _type_error(report, ctx, _kind(value), "string")
        return
    problem = parse_time_error(value, micro)
    if problem:
        report.type_errors.append(problem)


def _micro_time(value: Any, ctx: _Ctx, report: SchemaReport) -> None:
    _time(value, ctx, report, micro=True)


_SPECIAL = {INT_OR_STRING: _int_or_string, QUANTITY: _quantity, TIME: _time, MICRO_TIME: _micro_time}


def _base64(value: str, report: SchemaReport) -> None:
    offset = base64_error_offset(value.encode())
    if offset is not None:
        report.type_errors.append(f"illegal base64 data at input byte {offset}")


def base64_error_offset(src: bytes) -> int | None:
    """Where Go's `base64.StdEncoding.Decode` gives up on `src`, or None when it decodes."""
    si = 0
    while si < len(src):
        si, err = _quantum(src, si)
        if err is not None:
            return err
    return None


def _quantum(src: bytes, si: int) -> tuple[int, int | None]:
    j = 0
    while j < 4:
        if si == len(src):
            return si, (None if j == 0 else si - j)
        ch = src[si]
        si += 1
        if ch in _B64:
            j += 1
        elif ch in b"\r\n":
            continue
        elif ch != ord("="):
            return si, si - 1
        else:
            return _padding(src, si, j)
    return si, None


def _padding(src: bytes, si: int, j: int) -> tuple[int, int | None]:
    if j in (0, 1):
        return si, si - 1
    if j == 2:
        si = _skip_newlines(src, si)
        if si == len(src):
            return si, len(src)
        if src[si] != ord("="):
            return si, si - 1
        si += 1
    si = _skip_newlines(src, si)
    return si, (si if si < len(src) else None)


def _skip_newlines(src: bytes, si: int) -> int:
    while si < len(src) and src[si] in b"\r\n":
        si += 1
    return si


_TIME_ELEMENTS = (("2006", r"[0-9]{4}"), ("-", "-"), ("01", r"[0-9]{2}"), ("-", "-"), ("02", r"[0-9]{2}"),
                  ("T", "T"), ("15", r"[0-9]{1,2}"), (":", ":"), ("04", r"[0-9]{2}"), (":", ":"),
                  ("05", r"[0-9]{2}"))
_RANGES = {"01": ("month", 1, 12), "02": ("day", 1, 31), "15": ("hour", 0, 23), "04": ("minute", 0, 59),
           "05": ("second", 0, 59)}


def parse_time_error(value: str, micro: bool = False) -> str | None:
    """Go's `time.Parse(RFC3339, value)` error (RFC3339Micro for MicroTime), or None."""
    layout = "2006-01-02T15:04:05.000000Z07:00" if micro else "2006-01-02T15:04:05Z07:00"
    head = f"parsing time {go_quote(value)}"
    rest = value
    for elem, pattern in _TIME_ELEMENTS:
        match = re.match(pattern, rest)
        if match is None:
            return f"{head} as {go_quote(layout)}: cannot parse {go_quote(rest)} as {go_quote(elem)}"
        if elem in _RANGES and not _RANGES[elem][1] <= int(match.group()) <= _RANGES[elem][2]:
            return f"{head}: {_RANGES[elem][0]} out of range"
        rest = rest[match.end():]
    rest, problem = _fraction(rest, micro, head, layout)
    if problem:
        return problem
    zone = re.match(r"Z|[+-][0-9]{2}:[0-9]{2}", rest)
    if zone is None:
        return f"{head} as {go_quote(layout)}: cannot parse {go_quote(rest)} as \"Z07:00\""
    if rest[zone.end():]:
        return f"{head}: extra text: {go_quote(rest[zone.end():])}"
    return None


def _fraction(rest: str, micro: bool, head: str, layout: str) -> tuple[str, str | None]:
    if micro:
        if re.match(r"[.,][0-9]{6}", rest) is None:
            return rest, f"{head} as {go_quote(layout)}: cannot parse {go_quote(rest)} as \".000000\""
        return rest[7:], None
    match = re.match(r"[.,][0-9]+", rest)
    return (rest[match.end():] if match else rest), None

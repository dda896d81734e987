"""Decode Kubernetes protobuf request bodies into the dict a JSON client would have sent.

Why: kubectl 1.32+ sends typed writes (`kubectl create deployment/service/secret/job/...`) as
`application/vnd.kubernetes.protobuf` and does not fall back to JSON on a 415, so the API server has
to read them. Everything downstream works on JSON-shaped dicts, so this module turns the wire bytes
into exactly that, with the stdlib only.

Wire format: `k8s\\0` then a `runtime.Unknown` {1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3
contentEncoding, 4 contentType}; `raw` is the object's message. The message table
(`proto_schema.json`, written by `scripts/gen_proto_schema.py` from the upstream .proto files and Go
struct tags) gives, per field number: JSON name, type, cardinality, pointer-ness and omitempty.

gogo-protobuf writes every non-pointer field, zero or not; Go's encoding/json would drop the zero
ones tagged omitempty, so we do the same. Pointer fields are kept as sent (`replicas: 0` matters).
Non-pointer nested structs that come out empty (`status: {}`, `strategy: {}`) are dropped: a JSON
client's `{}` and an absent field default the same way. Zero `metav1.Time` (JSON `null`) and empty
collections (omitted, or `null`) are dropped too.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubelite.objects.errors import BadRequest

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
SCHEMA_PATH = Path(__file__).with_name("proto_schema.json")

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_TIME, _MICRO_TIME, _DURATION, _FIELDS = (_META + n for n in ("Time", "MicroTime", "Duration", "FieldsV1"))
_RAW = "k8s.io.apimachinery.pkg.runtime.RawExtension"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_VARINTS = frozenset({"bool", "int32", "int64"})
_SCALARS = _VARINTS | {"string", "bytes"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Field = tuple[int, int, int | bytes]  # (number, wire type, varint value or payload bytes)
Spec = list[Any]  # [json name ("" = inline), type, card (0 one, 1 repeated, 2 map), pointer, omitempty]


def is_protobuf(content_type: str) -> bool:
    """True for `application/vnd.kubernetes.protobuf` (any parameters, any case)."""
    return content_type.split(";", 1)[0].strip().lower() == MEDIA_TYPE


def decode(body: bytes) -> dict[str, Any]:
    """The object in a protobuf request body, JSON-shaped, with `apiVersion` and `kind` set."""
    body = bytes(body)  # slices of a bytearray/memoryview would not be `bytes`
    if not body.startswith(MAGIC):
        raise BadRequest("protobuf body does not start with the k8s\\0 magic prefix")
    try:
        api_version, kind, raw = _envelope(body[len(MAGIC):])
        obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
        obj.update(_message(raw, _message_name(api_version, kind)))
    except RecursionError:
        raise BadRequest("protobuf body is nested too deeply") from None
    except (ValueError, OverflowError) as e:  # out-of-range times, impossible values
        raise BadRequest(f"invalid protobuf body: {e}") from None
    return obj


@functools.cache
def _schema() -> dict[str, Any]:
    with SCHEMA_PATH.open("rb") as f:
        schema: dict[str, Any] = json.load(f)
    schema["lists"] = frozenset(schema["lists"])
    return schema


def _envelope(buf: bytes) -> tuple[str, str, bytes]:
    """apiVersion, kind and the object bytes of a runtime.Unknown."""
    unknown = _chunks(buf)
    type_meta = _chunks(unknown.get(1, b""))
    if unknown.get(3):
        raise BadRequest(f"protobuf body has unsupported contentEncoding {_text(unknown[3])!r}")
    return _text(type_meta.get(1, b"")), _text(type_meta.get(2, b"")), unknown.get(2, b"")


def _chunks(buf: bytes) -> dict[int, bytes]:
    return {num: raw for num, wire, raw in _fields(buf) if wire == 2 and isinstance(raw, bytes)}


def _message_name(api_version: str, kind: str) -> str:
    kinds = _schema()["kinds"]
    for key in (api_version, "*"):
        package, names = kinds.get(key, ("", ()))
        if kind in names:
            return f"{package}.{kind}"
    raise BadRequest(f'no kind "{kind}" is registered for version "{api_version}"')


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise BadRequest("protobuf body is truncated (varint runs past the end)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise BadRequest("protobuf body has a malformed varint (longer than 10 bytes)")


def _fields(buf: bytes) -> Iterator[Field]:
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise BadRequest("protobuf body has a field numbered 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield num, wire, value
            continue
        size = {1: 8, 5: 4}.get(wire)
        if wire == 2:
            size, pos = _varint(buf, pos)
        if size is None:
            raise BadRequest(f"protobuf body has unsupported wire type {wire} (field {num})")
        if pos + size > len(buf):
            raise BadRequest(f"protobuf body is truncated (field {num} needs {size} bytes)")
        yield num, wire, buf[pos:pos + size]
        pos += size


def _message(buf: bytes, name: str) -> dict[str, Any]:
    """One message as JSON; which zero values survive is decided by `_keep`."""
    table: dict[str, Spec] = _schema()["messages"][name]
    values: dict[str, Any] = {}
    for num, wire, raw in _fields(buf):
        spec = table.get(str(num))
        if spec is None:  # a field this schema does not know (newer client): skip, like Go
            continue
        _, typ, card = spec[:3]
        if card == 2:
            key, value = _map_entry(_payload(raw, name, num), typ, name)
            values.setdefault(str(num), {})[key] = value
        elif card == 1:
            values.setdefault(str(num), []).extend(_repeated(typ, wire, raw, name, num))
        else:
            values[str(num)] = _value(typ, wire, raw, name, num)
    out: dict[str, Any] = {}
    for key, spec in table.items():
        if key in values and _keep(spec, values[key]):
            if spec[0]:
                out[spec[0]] = values[key]
            else:  # embedded Go struct without a JSON name: its fields are inlined
                out.update(values[key])
    return out


def _keep(spec: Spec, value: Any) -> bool:
    """Whether Go's encoding/json would write the field (less `null` and non-pointer `{}`)."""
    _, typ, card, pointer, omitempty = spec
    if value is None:
        return False
    if card:
        return bool(value)
    if typ in _SCALARS:
        return bool(pointer or not omitempty or value not in ("", 0))
    if typ in _SPECIAL:
        return True
    return bool(pointer or value)


def _repeated(typ: str, wire: int, raw: int | bytes, name: str, num: int) -> list[Any]:
    if wire == 2 and typ in _VARINTS:  # packed
        items, pos = [], 0
        buf = _payload(raw, name, num)
        while pos < len(buf):
            item, pos = _varint(buf, pos)
            items.append(_value(typ, 0, item, name, num))
        return items
    return [_value(typ, wire, raw, name, num)]


def _map_entry(buf: bytes, typ: str, name: str) -> tuple[str, Any]:
    key, value = "", _value(typ, 0, 0, name, 2) if typ in _VARINTS else _value(typ, 2, b"", name, 2)
    for num, wire, raw in _fields(buf):
        if num == 1:
            key = _value("string", wire, raw, name, 1)
        elif num == 2:
            value = _value(typ, wire, raw, name, 2)
    return key, value


def _value(typ: str, wire: int, raw: int | bytes, name: str, num: int) -> Any:
    if typ in _SCALARS:
        value = _scalar(typ, wire, raw, name, num)
        return base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
    buf = _payload(raw, name, num)
    if typ in _SPECIAL:
        return _SPECIAL[typ](buf)
    if typ in _schema()["lists"]:  # Go slice types (metav1.Verbs, ExtraValue): the bare array
        return [_value("string", w, v, typ, n) for n, w, v in _fields(buf) if n == 1]
    return _message(buf, typ)


def _scalar(typ: str, wire: int, raw: int | bytes, name: str, num: int) -> Any:
    """A scalar as Python: bool, signed int, str, or the raw bytes of a `bytes` field."""
    if typ in _VARINTS:
        if wire != 0 or not isinstance(raw, int):
            raise BadRequest(f"protobuf field {num} of {name} should be a varint")
        return bool(raw) if typ == "bool" else _signed(raw, 32 if typ == "int32" else 64)
    buf = _payload(raw, name, num)
    return _text(buf) if typ == "string" else buf


def _payload(raw: int | bytes, name: str, num: int) -> bytes:
    if not isinstance(raw, bytes):
        raise BadRequest(f"protobuf field {num} of {name} should be length-delimited")
    return raw


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _text(buf: bytes) -> str:
    return buf.decode("utf-8", errors="replace")  # as Go's encoding/json coerces invalid UTF-8


def _small(buf: bytes, typ: str) -> dict[int, Any]:
    """The scalar fields of a special message (Time, Quantity, ...) by number, typed per the schema."""
    table: dict[str, Spec] = _schema()["messages"][typ]
    out: dict[int, Any] = {}
    for num, wire, raw in _fields(buf):
        spec = table.get(str(num))
        if spec is not None:
            out[num] = _scalar(spec[1], wire, raw, typ, num)
    return out


def _time(buf: bytes, micro: bool = False) -> str | None:
    """metav1.Time: RFC 3339 in seconds (Go drops the nanos); MicroTime: 6 fractional digits."""
    if not buf:  # gogo writes a zero time as an empty message; Go's JSON for it is null
        return None
    fields = _small(buf, _MICRO_TIME if micro else _TIME)
    nanos = fields.get(2, 0) if micro else 0
    moment = _EPOCH + timedelta(seconds=fields.get(1, 0), microseconds=int(nanos / 1000))
    fraction = f".{moment.microsecond:06d}" if micro else ""
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}{fraction}Z"


def _duration(buf: bytes) -> str:
    """Go's time.Duration.String() of the nanoseconds in field 1: 1h0m0s, 1.5s, 300ms, 0s."""
    ns = _small(buf, _DURATION).get(1, 0)
    sign, n = ("-" if ns < 0 else ""), abs(ns)
    if n < 1_000_000_000:
        for unit, scale in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if n >= scale:
                return sign + _decimal(n, scale) + unit
        return "0s"
    hours, n = divmod(n, 3_600_000_000_000)
    minutes, n = divmod(n, 60_000_000_000)
    text = _decimal(n, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    return sign + (f"{hours}h{text}" if hours else text)


def _decimal(value: int, scale: int) -> str:
    whole, frac = divmod(value, scale)
    digits = str(frac).rjust(len(str(scale)) - 1, "0").rstrip("0") if frac else ""
    return f"{whole}.{digits}" if digits else str(whole)


def _quantity(buf: bytes) -> str:
    return _small(buf, _QUANTITY).get(1) or "0"  # already canonical: gogo writes Quantity.String()


def _int_or_string(buf: bytes) -> int | str:
    fields = _small(buf, _INT_OR_STRING)
    kind = fields.get(1, 0)
    if kind not in (0, 1):
        raise BadRequest(f"protobuf IntOrString has impossible type {kind}")
    return str(fields.get(3, "")) if kind else int(fields.get(2, 0))


def _raw_json(buf: bytes) -> Any:
    """RawExtension / FieldsV1 {1 raw}: embedded JSON (or an embedded protobuf object); none = null."""
    raw = _chunks(buf).get(1, b"")
    if raw.startswith(MAGIC):
        return decode(raw)
    try:
        return json.loads(raw) if raw else None
    except ValueError as e:
        raise BadRequest(f"protobuf RawExtension/FieldsV1 does not hold JSON: {e}") from None


_SPECIAL: dict[str, Callable[[bytes], Any]] = {
    _TIME: _time, _MICRO_TIME: functools.partial(_time, micro=True), _DURATION: _duration, _QUANTITY: _quantity,
    _QUANTITY + "Value": _quantity, _INT_OR_STRING: _int_or_string,
    _FIELDS: _raw_json, _RAW: _raw_json,
}

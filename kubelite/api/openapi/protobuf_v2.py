"""Swagger 2.0 as gnostic's `openapi.v2.Document` protobuf, the only form client-go reads.

client-go asks for /openapi/v2 with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
and nothing else, and kubectl needs that document whenever its v3 check says "not supported
server-side": `kubectl create/apply -f` of a `kind: List` (what `kubectl get -o yaml` writes) is
validated client-side against it, and `kubectl explain --output plaintext-openapiv2` reads it.

Field numbers are gnostic-models' `openapiv2/OpenAPIv2.proto`. Only what the Swagger documents
here use is encoded: an unknown schema or parameter key is an error, not a silent drop. Vendor
extensions are `NamedAny{name, Any{yaml}}` with the value as JSON (which is YAML), the way
kube-openapi reads them back (`VendorExtensionToMap`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

Doc = dict[str, Any]

_OPERATION_FIELDS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _str(field: int, value: str) -> bytes:
    return _bytes(field, value.encode()) if value else b""


def _strs(field: int, values: Iterable[str]) -> bytes:
    return b"".join(_bytes(field, v.encode()) for v in values)


def _bool(field: int, value: bool) -> bytes:
    return _varint(field << 3) + b"\x01" if value else b""


def _named(field: int, items: Iterable[tuple[str, bytes]]) -> bytes:
    """A repeated Named* message: {1 name, 2 value}."""
    return b"".join(_bytes(field, _str(1, name) + _bytes(2, value)) for name, value in items)


def _extensions(field: int, node: Doc) -> bytes:
    return _named(field, ((k, _str(2, json.dumps(v))) for k, v in node.items() if k.startswith("x-")))


def encode(doc: Doc) -> bytes:
    """The Swagger document (`render.swagger`) as an openapi.v2.Document message."""
    info = doc["info"]
    security = [_named(1, ((name, _strs(1, scopes)) for name, scopes in req.items())) for req in doc["security"]]
    api_keys = ((name, _bytes(2, _str(1, d["type"]) + _str(2, d["name"]) + _str(3, d["in"])
                                  + _str(4, d.get("description", ""))))
                for name, d in doc["securityDefinitions"].items())
    return b"".join((
        _str(1, doc["swagger"]),
        _bytes(2, _str(1, info["title"]) + _str(2, info["version"])),
        _bytes(8, _named(2, ((path, _path_item(item)) for path, item in doc["paths"].items()))),
        _bytes(9, _named(1, ((name, schema(s)) for name, s in doc["definitions"].items()))),
        b"".join(_bytes(12, s) for s in security),
        _bytes(13, _named(1, api_keys)),
    ))


def schema(node: Doc) -> bytes:
    parts = []
    for key, value in node.items():
        encoder = _SCHEMA_FIELDS.get(key)
        if encoder is not None:
            parts.append(encoder(value))
        elif not key.startswith("x-"):
            raise ValueError(f"schema key {key!r} has no encoding here")
    parts.append(_extensions(31, node))
    return b"".join(parts)


def _additional(value: Any) -> bytes:
    """AdditionalPropertiesItem: a oneof, so even `false` is written."""
    if isinstance(value, dict):
        return _bytes(21, _bytes(1, schema(value)))
    return _bytes(21, _varint(2 << 3) + (b"\x01" if value else b"\x00"))


def _type(value: Any) -> bytes:
    return _bytes(22, _strs(1, [value] if isinstance(value, str) else value))


_SCHEMA_FIELDS: dict[str, Callable[[Any], bytes]] = {
    "$ref": lambda v: _str(1, v),
    "format": lambda v: _str(2, v),
    "title": lambda v: _str(3, v),
    "description": lambda v: _str(4, v),
    "required": lambda v: _strs(19, v),
    "additionalProperties": _additional,
    "type": _type,
    "items": lambda v: _bytes(23, _bytes(1, schema(v))),
    "properties": lambda v: _bytes(25, _named(1, ((k, schema(s)) for k, s in v.items()))),
}


def _path_item(item: Doc) -> bytes:
    parts = [_bytes(_OPERATION_FIELDS[method], _operation(op)) for method, op in item.items()
             if method in _OPERATION_FIELDS]
    parts.extend(_bytes(9, _parameter(p)) for p in item.get("parameters", []))
    return b"".join(parts)


def _operation(op: Doc) -> bytes:
    responses = _named(1, ((code, _bytes(1, _response(r))) for code, r in op["responses"].items()))
    return b"".join((
        _strs(1, op.get("tags", [])),
        _str(3, op.get("description", "")),
        _str(5, op.get("operationId", "")),
        _strs(6, op.get("produces", [])),
        _strs(7, op.get("consumes", [])),
        b"".join(_bytes(8, _parameter(p)) for p in op.get("parameters", [])),
        _bytes(9, responses),
        _strs(10, op.get("schemes", [])),
        _extensions(13, op),
    ))


def _response(response: Doc) -> bytes:
    body = _str(1, response["description"])
    if "schema" in response:
        body += _bytes(2, _bytes(1, schema(response["schema"])))
    return body


def _parameter(param: Doc) -> bytes:
    """ParametersItem{1 Parameter{1 BodyParameter | 2 NonBodyParameter{3 query | 4 path}}}."""
    where = param["in"]
    if where == "body":
        inner = _bytes(1, _str(1, param.get("description", "")) + _str(2, param["name"]) + _str(3, where)
                       + _bool(4, param.get("required", False)) + _bytes(5, schema(param["schema"])))
    elif where in ("query", "path"):
        type_field, unique_field, oneof = (6, 20, 3) if where == "query" else (5, 19, 4)
        sub = (_bool(1, param.get("required", False)) + _str(2, where) + _str(3, param.get("description", ""))
               + _str(4, param["name"]) + _str(type_field, param["type"])
               + _bool(unique_field, param.get("uniqueItems", False)))
        inner = _bytes(2, _bytes(oneof, sub))
    else:
        raise ValueError(f"parameter location {where!r} has no encoding here")
    return _bytes(1, inner)

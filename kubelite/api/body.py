"""Reading an object from a request body: decode, check its type and fields, normalise.

Unknown fields are refused under `fieldValidation=Strict` (kubectl's default), reported as
`Warning` headers under `Warn` (the server default), and dropped silently under `Ignore`; a value of
the wrong JSON type is always a 400, as Go's decoder makes it upstream.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kubelite.api.codec import check_size, decode_body
from kubelite.api.objectmeta import Obj, meta
from kubelite.api.query import field_validation
from kubelite.api.requestinfo import ResourceRequest
from kubelite.objects.errors import BadRequest
from kubelite.objects.registry import ResourceType


async def read_bytes(request: web.Request) -> bytes:
    body = await request.content.read(-1) if request.can_read_body else b""
    check_size(body)
    return body


async def read_object(request: web.Request, rt: ResourceType, *,
                      expect_kind: tuple[str, str] | None = None) -> tuple[Obj, list[str]]:
    """The body as an object of `rt` (or of `expect_kind` (apiVersion, kind)), plus warnings."""
    raw = await read_bytes(request)
    obj = decode_body(raw, request.headers.get("Content-Type"))
    warnings = check_object(obj, rt, request.query, expect_kind=expect_kind)
    return obj, warnings


def check_object(obj: Any, rt: ResourceType, query: Any, *,
                 expect_kind: tuple[str, str] | None = None) -> list[str]:
    """Type, kind and schema checks of a full object; prunes nulls in place; returns warnings."""
    api_version, kind = expect_kind or (rt.api_version, rt.kind)
    if not isinstance(obj, dict):
        raise BadRequest(f"the body of the request must be a JSON or YAML object of kind {kind}")
    sent_kind, sent_version = obj.get("kind"), obj.get("apiVersion")
    if sent_kind not in (None, "", kind):
        raise BadRequest(f'the kind in the data ({sent_kind}) does not match the expected kind ({kind})')
    if sent_version not in (None, "", api_version):
        raise BadRequest(f"the API version in the data ({sent_version}) does not match the expected API "
                         f"version ({api_version})")
    prune_nulls(obj)
    if expect_kind is not None:
        return []
    return _schema_warnings(obj, rt, field_validation(query))


def _schema_warnings(obj: Obj, rt: ResourceType, mode: str) -> list[str]:
    from kubelite.objects.validation import check_schema

    report = check_schema(rt, obj)
    prefix = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
    if report.type_errors:
        raise BadRequest(prefix + report.type_errors[0])  # Go's decoder stops at the first
    if not report.unknown_fields:
        return []
    if mode == "Strict":
        raise BadRequest(prefix + "strict decoding error: " + ", ".join(report.unknown_fields))
    report.drop_unknown_fields()
    return list(report.unknown_fields) if mode == "Warn" else []


def prune_nulls(value: Any) -> Any:
    """Drop null map values recursively: in a full object, null means unset (Go's decoder)."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for v in value.values():
            prune_nulls(v)
    elif isinstance(value, list):
        for v in value:
            prune_nulls(v)
    return value


def check_namespace(obj: Obj, rr: ResourceRequest) -> None:
    sent = meta(obj).get("namespace")
    if rr.rt.namespaced and sent and rr.namespace and sent != rr.namespace:
        raise BadRequest("the namespace of the provided object does not match the namespace sent on the "
                         "request")
    if rr.rt.namespaced and rr.namespace is None:
        raise BadRequest(f"{rr.rt.plural} must be created, updated or replaced within a namespace")


async def read_optional(request: web.Request) -> dict[str, Any] | None:
    """An optional JSON body (DeleteOptions); absent or empty is None."""
    raw = await read_bytes(request)
    if not raw.strip():
        return None
    obj = decode_body(raw, request.headers.get("Content-Type"))
    if not isinstance(obj, dict):
        raise BadRequest("the request body must be a JSON object (DeleteOptions)")
    return obj

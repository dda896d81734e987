"""Request bodies in, response bodies out.

Bodies arrive as JSON, YAML or Kubernetes protobuf (kubectl's typed clients send protobuf and never
retry on 415). Responses are always JSON: client-go decodes by the response Content-Type, so a JSON
answer to an `Accept: application/vnd.kubernetes.protobuf,application/json` request is fine.

`Accept` negotiation picks one of three *views* of a resource: the object itself, a meta.k8s.io
Table (server-side printing), or PartialObjectMetadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from kubelite.objects.errors import BadRequest, NotAcceptable, RequestEntityTooLarge, UnsupportedMediaType

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's limit for a request body
JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_size(body: bytes) -> None:
    if len(body) > MAX_BODY:
        raise RequestEntityTooLarge(f"request body too large: {len(body)} bytes, limit is {MAX_BODY}")


def decode_body(body: bytes, content_type: str | None) -> Any:
    """Decode an object body; raise BadRequest / UnsupportedMediaType, never anything else."""
    check_size(body)
    kind = media_type(content_type)
    if not body.strip():
        raise BadRequest("request body is empty; send a JSON or YAML object")
    if kind in ("", JSON, "*/*", "text/plain"):
        return load_json(body)
    if kind in (YAML, "application/x-yaml", "text/yaml"):
        return load_yaml(body)
    if kind == PROTOBUF:
        from kubelite.objects.protobuf import decode

        return decode(body)
    raise UnsupportedMediaType(f'the body of the request was in an unknown format - accepted media types '
                               f'include: application/json, application/yaml, '
                               f'application/vnd.kubernetes.protobuf (got "{kind}")')


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"error decoding request body: invalid JSON: {exc}") from None


def load_yaml(body: bytes) -> Any:
    import yaml

    try:
        return yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise BadRequest(f"error decoding request body: invalid YAML: {exc}") from None


def pretty(obj: Any) -> bytes:
    return json.dumps(obj, indent=2).encode()


# ----- Accept negotiation -------------------------------------------------------------------------

@dataclass(frozen=True)
class View:
    kind: str  # "object" | "Table" | "PartialObjectMetadata" | "PartialObjectMetadataList"
    include_object: str = "Metadata"


def negotiate(accept: str | None, *, include_object: str | None = None) -> View:
    """The first acceptable view in the client's Accept list (meta.k8s.io v1 or v1beta1)."""
    if not accept:
        return View("object")
    for clause in accept.split(","):
        base, params = _parse_clause(clause)
        as_kind = params.get("as")
        if as_kind is None:
            if base in ("application/json", "application/*", "*/*", PROTOBUF, YAML, "application/json-seq"):
                return View("object")
            continue
        if params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1") and as_kind in (
                "Table", "PartialObjectMetadata", "PartialObjectMetadataList"):
            return View(as_kind, include_object or "Metadata")
    raise NotAcceptable(f"only the following media types are accepted: application/json, "
                        f"application/yaml, application/vnd.kubernetes.protobuf (Accept: {accept})")


def _parse_clause(clause: str) -> tuple[str, dict[str, str]]:
    pieces = [p.strip() for p in clause.split(";")]
    params = {}
    for piece in pieces[1:]:
        key, _, value = piece.partition("=")
        params[key.strip()] = value.strip()
    return pieces[0].lower(), params

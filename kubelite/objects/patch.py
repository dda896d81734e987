"""PATCH bodies: JSON patch, JSON merge patch, strategic merge patch and server-side apply.

`apply_patch` is the one entry point the API uses: it picks the patch type from the Content-Type
(parameters such as `; charset=utf-8` are ignored), decodes the body and applies it to a live object.
The strategic merge engine lives in `kubelite.objects.strategic`.

Invariants: `original` is never mutated and the result is always a fresh JSON object (dict); every
failure is a StatusError with upstream's code and, where upstream has one, its message:
  - unsupported Content-Type -> 415 UnsupportedMediaType listing the accepted types;
  - a body that is not JSON (YAML for apply) -> 400 BadRequest;
  - a JSON patch that is not a list of operation objects -> 400; more than 10000 operations -> 413;
  - a JSON patch that does not apply (bad op, missing path, failed test) -> 422 Invalid with
    upstream's deliberately generic message (the library's reason stays in `__cause__` for logs);
  - a merge patch that is null or a scalar -> 400 `Invalid JSON Patch`; one whose result is not an
    object -> 422; strategic merge patch errors as in `strategic`.
Server-side apply is approximated by a strategic merge of the applied manifest into the live
object (no managedFields ownership, so fields dropped from a manifest are not removed).
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import jsonpatch
import jsonpointer
import yaml

from kubelite.objects import schema as schemas
from kubelite.objects.errors import (
    BadRequest,
    Cause,
    Invalid,
    RequestEntityTooLarge,
    UnsupportedMediaType,
    invalid,
)
from kubelite.objects.strategic import json_kind, strategic_merge_patch

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# Upstream's order (apiserver endpoints installer), as listed in 415 errors and discovery.
SUPPORTED_PATCH_TYPES: tuple[str, ...] = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)

MAX_JSON_PATCH_OPERATIONS = 10000

__all__ = [
    "APPLY_PATCH", "JSON_PATCH", "MERGE_PATCH", "STRATEGIC_MERGE_PATCH", "SUPPORTED_PATCH_TYPES",
    "apply_patch", "json_patch", "media_type", "merge_patch", "server_side_apply", "strategic_merge_patch",
]


def media_type(content_type: str) -> str:
    """The bare media type of a Content-Type header value (`; charset=...` dropped, lower-cased)."""
    return content_type.split(";", 1)[0].strip().lower()


def apply_patch(original: dict[str, Any], body: bytes, content_type: str, *, definition: str) -> dict[str, Any]:
    """Apply a PATCH request body of the given Content-Type to `original`."""
    kind = media_type(content_type)
    if kind not in SUPPORTED_PATCH_TYPES:
        raise UnsupportedMediaType("the body of the request was in an unknown format - accepted media types "
                                   "include: " + ", ".join(SUPPORTED_PATCH_TYPES))
    try:
        return _apply(original, body, kind, definition)
    except RecursionError:
        raise BadRequest("error decoding patch: the patch is nested too deeply") from None


def _apply(original: dict[str, Any], body: bytes, kind: str, definition: str) -> dict[str, Any]:
    if kind == APPLY_PATCH:
        return server_side_apply(original, _decode_yaml(body), definition)
    document = _decode_json(body)
    if kind == JSON_PATCH:
        return json_patch(original, document)
    if kind == MERGE_PATCH:
        return merge_patch(original, document)
    return strategic_merge_patch(original, {} if document is None else document, definition)


def merge_patch(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if isinstance(patch, list):
        raise _not_an_object(patch)
    if not isinstance(patch, dict):
        raise BadRequest("Invalid JSON Patch")
    return _merge(copy.deepcopy(original), patch)


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def json_patch(original: dict[str, Any], ops: Any) -> dict[str, Any]:
    """RFC 6902 JSON patch; null is an empty patch, as upstream decodes it."""
    if ops is None:
        return copy.deepcopy(original)
    if not isinstance(ops, list):
        raise BadRequest(f"json: cannot unmarshal {json_kind(ops)} into Go value of type jsonpatch.Patch")
    for op in ops:
        if not isinstance(op, dict):
            raise BadRequest(f"json: cannot unmarshal {json_kind(op)} into Go value of type jsonpatch.Operation")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise RequestEntityTooLarge(f"The allowed maximum operations in a JSON patch is "
                                    f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}")
    try:
        result = jsonpatch.JsonPatch(copy.deepcopy(ops)).apply(original, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException,
            TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        # Upstream answers 422 with this generic text and drops the library's reason.
        raise Invalid("the server rejected our request due to an error in our request") from exc
    if not isinstance(result, dict):
        raise _not_an_object(result)
    return result


def server_side_apply(original: dict[str, Any], manifest: Any, definition: str) -> dict[str, Any]:
    """Merge an applied manifest into the live object (strategic-merge semantics, no ownership)."""
    if not isinstance(manifest, dict):
        raise BadRequest(f"error decoding patch: json: cannot unmarshal {json_kind(manifest)} "
                         "into Go value of type map[string]interface {}")
    expected = _api_version(definition)
    given = manifest.get("apiVersion") or ""
    if expected and given != expected:
        raise BadRequest("Incorrect version specified in apply patch. "
                         f"Specified patch version: {given}, expected: {expected}")
    return strategic_merge_patch(original, manifest, definition)


def _api_version(definition: str) -> str:
    enum = schemas.property_schema(schemas.definition(definition), "apiVersion").get("enum") if definition else None
    return enum[0] if isinstance(enum, list) and len(enum) == 1 and isinstance(enum[0], str) else ""


def _decode_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        # Upstream checks json.Valid before anything else and says exactly this.
        raise BadRequest("invalid JSON patch") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _Loader(yaml.SafeLoader):
    """YAML as sigs.k8s.io/yaml reads it into JSON: timestamps stay strings."""


def _timestamp_as_string(loader: _Loader, node: yaml.Node) -> Any:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_string)


def _decode_yaml(body: bytes) -> Any:
    try:
        return _jsonable(yaml.load(body.decode("utf-8"), Loader=_Loader))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"error encoding patch: error converting YAML to JSON: {exc}") from None
    except yaml.YAMLError as exc:
        raise BadRequest(f"error encoding patch: error converting YAML to JSON: yaml: {_yaml_problem(exc)}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem


def _jsonable(value: Any) -> Any:
    """YAML allows what JSON does not (non-string keys, binary); convert as sigs.k8s.io/yaml does."""
    if isinstance(value, dict):
        return {_json_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest("error encoding patch: error converting YAML to JSON: NaN and Inf are not JSON")
    return value


def _json_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def _not_an_object(value: Any) -> Invalid:
    """What upstream says when the patched document cannot be decoded back into an object."""
    text = json.dumps(value, separators=(",", ":"))
    cause = Cause("FieldValueInvalid", f"Invalid value: {json.dumps(text)}: the patched document is "
                                       f"a JSON {json_kind(value)}, not an object", "patch")
    return invalid("", "", [cause])

"""Kubernetes type schemas, from a maintained source instead of hand-typed types.

The `kubernetes-validate` package ships the upstream OpenAPI definitions (as JSON Schema `$defs`)
for each Kubernetes release, including descriptions and the patch metadata
(`x-kubernetes-patch-merge-key`, `x-kubernetes-patch-strategy`, list types). Strict validation
(unknown fields), strategic merge patch, and the OpenAPI documents kubectl reads are all driven
from it. Loading costs ~50 ms, so it happens on first use, not at import.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "v1.37.0-local"
REF_PREFIX = "#/$defs/"

Schema = dict[str, Any]


def _definitions_path() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or spec.origin is None:
        raise RuntimeError("kubernetes-validate is not installed: pip install kubernetes-validate==1.37.0")
    return Path(spec.origin).parent / "kubernetes-json-schema" / SCHEMA_VERSION / "_definitions.json"


@functools.cache
def definitions() -> dict[str, Schema]:
    """All definitions by OpenAPI name (e.g. `io.k8s.api.apps.v1.Deployment`)."""
    with _definitions_path().open("rb") as f:
        defs: dict[str, Schema] = json.load(f)["$defs"]
    return defs


def ref_name(schema: Schema) -> str | None:
    """The definition name a schema refers to, or None when it is inline."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and REF_PREFIX in ref:
        return ref.split(REF_PREFIX, 1)[1]
    return None


def resolve(schema: Schema | None) -> Schema:
    """Follow `$ref` (possibly repeatedly) to the schema it names; {} when unknown."""
    seen = 0
    while schema is not None and (name := ref_name(schema)) is not None and seen < 16:
        schema = definitions().get(name)
        seen += 1
    return schema or {}


def definition(name: str) -> Schema:
    return definitions().get(name, {})


def property_schema(schema: Schema, prop: str) -> Schema:
    """The resolved schema of property `prop` of an object schema; {} when absent."""
    props = resolve(schema).get("properties") or {}
    return resolve(props.get(prop)) if prop in props else {}


def raw_property(schema: Schema, prop: str) -> Schema:
    """The unresolved property schema, which carries the x-kubernetes-* patch extensions."""
    props = resolve(schema).get("properties") or {}
    value = props.get(prop)
    return value if isinstance(value, dict) else {}


def items_schema(schema: Schema) -> Schema:
    return resolve(resolve(schema).get("items"))


def types_of(schema: Schema) -> set[str]:
    """The JSON types a schema admits, ignoring null (nulls are always accepted and mean unset)."""
    t = resolve(schema).get("type")
    if t is None:
        return set()
    types = {t} if isinstance(t, str) else set(t)
    return types - {"null"}

"""Type schemas for the OpenAPI documents, converted from the JSON Schema `$defs` in `schema.py`.

The source is JSON Schema as kubernetes-validate ships it: nullable types (`["string", "null"]`),
refs as `#/$defs/NAME`, `enum` pinned on every `apiVersion`/`kind`, and IntOrString / Quantity as
`oneOf`. Upstream's documents differ, and kubectl reads upstream's shapes:

- Swagger 2.0: refs `#/definitions/NAME` (siblings such as `description` allowed), plain types,
  IntOrString `{type: string, format: int-or-string}`, Quantity `{type: string}`.
- OpenAPI 3.0: refs `#/components/schemas/NAME`, a ref with siblings wrapped as `allOf: [{$ref}]`
  (kube-openapi's WrapRefs), IntOrString and Quantity as `oneOf` of their two types.

Neither has the `apiVersion`/`kind` enums. Documents carry only the definitions reachable from what
they serve (`closure`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, Literal

from kubelite.objects import schema as source

Schema = dict[str, Any]
Dialect = Literal["v2", "v3"]
GVK = tuple[str, str, str]

REF_PREFIX: dict[Dialect, str] = {"v2": "#/definitions/", "v3": "#/components/schemas/"}
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"

_SPECIAL: dict[str, dict[Dialect, Schema]] = {
    INT_OR_STRING: {
        "v2": {"type": "string", "format": "int-or-string"},
        "v3": {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]},
    },
    QUANTITY: {
        "v2": {"type": "string"},
        "v3": {"oneOf": [{"type": "string"}, {"type": "number"}]},
    },
}
_SPECIAL_DESCRIPTIONS = {
    INT_OR_STRING: "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
                   "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you "
                   "to have, for example, a JSON field that can accept a name or number.",
    QUANTITY: "Quantity is a fixed-point representation of a number. It provides convenient "
              "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors."
              "\n\nThe serialization format is:\n\n``` <quantity>        ::= <signedNumber><suffix>\n\n"
              "\t(Note that <suffix> may be empty, from the \"\" case in <decimalSI>.)\n\n"
              "<digit>           ::= 0 | 1 | ... | 9 <digits>          ::= <digit> | <digit><digits> "
              "<number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits> "
              "<sign>            ::= \"+\" | \"-\" <signedNumber>    ::= <number> | <sign><number> "
              "<suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI> "
              "<binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei\n\n"
              "\t(International System of units; See: http://physics.nist.gov/cuu/Units/binary.html)\n\n"
              "<decimalSI>       ::= m | \"\" | k | M | G | T | P | E\n\n"
              "\t(Note that 1024 = 1Ki but 1000 = 1k; I didn't choose the capitalization.)\n\n"
              "<decimalExponent> ::= \"e\" <signedNumber> | \"E\" <signedNumber> ```",
}
_CHILD_LISTS = ("allOf", "anyOf", "oneOf")
_TYPE_META = ("apiVersion", "kind")


def ref(name: str, dialect: Dialect) -> Schema:
    return {"$ref": REF_PREFIX[dialect] + name}


def convert(node: Schema, dialect: Dialect) -> Schema:
    """One schema node (and everything inline under it) in the dialect's shape."""
    out: Schema = {}
    for key, value in node.items():
        if key == "type":
            out[key] = _collapse_type(value)
        elif key == "$ref":
            out[key] = REF_PREFIX[dialect] + (source.ref_name(node) or str(value))
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _property(name, prop, dialect) for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = convert(value, dialect)
        elif key in _CHILD_LISTS and isinstance(value, list):
            out[key] = [convert(v, dialect) for v in value]
        else:
            out[key] = value
    if dialect == "v3" and "$ref" in out and len(out) > 1:
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def _property(name: str, prop: Schema, dialect: Dialect) -> Schema:
    converted = convert(prop, dialect)
    if name in _TYPE_META:
        converted.pop("enum", None)
    return converted


def _collapse_type(value: Any) -> Any:
    if isinstance(value, list):
        types = [t for t in value if t != "null"]
        return types[0] if len(types) == 1 else types or "object"
    return value


def definition(name: str, dialect: Dialect, served: frozenset[tuple[str, str]] = frozenset()) -> Schema:
    """The named definition in the dialect's shape; group-version-kind lists limited to `served`."""
    if name in _SPECIAL:
        return {"description": _SPECIAL_DESCRIPTIONS[name], **_SPECIAL[name][dialect]}
    out = convert(source.definition(name), dialect)
    gvks = out.get("x-kubernetes-group-version-kind")
    if served and isinstance(gvks, list) and len(gvks) > 1:
        kept = [g for g in gvks if (g.get("group"), g.get("version")) in served]
        out["x-kubernetes-group-version-kind"] = kept or gvks
    return out


def definitions(names: Iterable[str], dialect: Dialect, served: frozenset[tuple[str, str]]) -> dict[str, Schema]:
    return {name: definition(name, dialect, served) for name in sorted(names)}


def closure(roots: Iterable[str]) -> set[str]:
    """The definitions reachable from `roots` (roots included) by following refs."""
    seen: set[str] = set()
    stack = [r for r in roots if r in source.definitions()]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(n for n in _refs(source.definition(name)) if n not in seen and n in source.definitions())
    return seen


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        name = source.ref_name(node)
        if name is not None:
            yield name
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@functools.cache
def gvk_index() -> dict[GVK, str]:
    """(group, version, kind) -> definition name, for every definition that declares its kinds."""
    index: dict[GVK, str] = {}
    for name, schema in source.definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            index.setdefault((gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")), name)
    return index


def resolve_kind(group: str, version: str, kind: str) -> tuple[str | None, GVK]:
    """The definition of a kind and the GVK it is known by.

    Falls back to the same kind in another group-version (the registry names pods/eviction's kind
    `Eviction` without its group, upstream serves policy/v1 Eviction); None when no type exists
    (PodExecOptions and the other connect options are query parameters, not definitions).
    """
    index = gvk_index()
    wanted = (group, version, kind)
    if wanted in index:
        return index[wanted], wanted
    candidates = sorted((gvk for gvk in index if gvk[2] == kind), key=lambda g: (g[1] != version, g))
    if candidates:
        return index[candidates[0]], candidates[0]
    return None, wanted

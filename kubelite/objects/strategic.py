"""Strategic merge patch, driven by the upstream OpenAPI patch metadata.

A strategic merge patch is a JSON merge patch (maps merge recursively, `null` deletes) in which a
list whose schema says `x-kubernetes-patch-strategy: merge` is merged instead of replaced: lists of
maps by their `x-kubernetes-patch-merge-key`, lists of scalars as sets. Directives refine it:
`$patch: replace|delete` (in a map, or as a list item), `$retainKeys`, `$setElementOrder/<list>` and
`$deleteFromPrimitiveList/<list>`. Where there is no schema (unknown definitions, map values such as
`metadata.annotations`) every list is replaced, so the patch behaves as a JSON merge patch.

Invariants: the inputs are never mutated (they are deep-copied once, then merged in place); the
result carries no directive keys and no nulls the patch introduced; every failure is a StatusError
(BadRequest where upstream says 400, Invalid where upstream says 422 or where it answers 500 for a
malformed patch, which is the client's fault).

Results match upstream's apimachinery code (checked against `kubectl patch --local`), including
where it departs from the devel doc: merged lists follow `$setElementOrder` when given, else patch
items in patch order interleaved with server-only items in live order (an item new to the list lands
before the live items); `$patch: delete` on a live map leaves `{}` for a struct, while a plain map
such as `labels` is removed (upstream's encoder omits the empty map it leaves).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from kubelite.objects import schema as schemas
from kubelite.objects.errors import BadRequest, Invalid

Schema = dict[str, Any]

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList"

_MISSING: Any = object()


@dataclass(frozen=True)
class _Field:
    """Patch metadata of one field: its (resolved) schema, strategies and merge key."""

    schema: Schema
    strategies: frozenset[str]
    merge_key: str

    @property
    def merging(self) -> bool:
        return "merge" in self.strategies


def strategic_merge_patch(original: dict[str, Any], patch: dict[str, Any], definition: str) -> dict[str, Any]:
    """Apply `patch` to `original`, the definition (`io.k8s.api.apps.v1.Deployment`) naming its schema."""
    if not isinstance(patch, dict):
        raise BadRequest(f"json: cannot unmarshal {json_kind(patch)} into Go value of type map[string]interface {{}}")
    root = schemas.definition(definition) if definition else {}
    merged = _merge_map(copy.deepcopy(original), copy.deepcopy(patch), root)
    return merged if merged is not None else {}


def _field(parent: Schema, key: str) -> _Field:
    resolved = schemas.resolve(parent)
    props = resolved.get("properties") or {}
    raw = props.get(key) if key in props else resolved.get("additionalProperties")
    if not isinstance(raw, dict):
        return _Field({}, frozenset(), "")
    strategy = raw.get("x-kubernetes-patch-strategy") or ""
    return _Field(schemas.resolve(raw), frozenset(s.strip() for s in strategy.split(",") if s.strip()),
                  raw.get("x-kubernetes-patch-merge-key") or "")


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Schema) -> dict[str, Any] | None:
    """Merge `patch` into `original` in place; None means the map itself is deleted."""
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            return _merge_map({}, patch, schema)
        if directive == "delete":
            return None
        # `merge` is the default for maps; upstream rejects it, accepting it is harmless.
        if directive != "merge":
            raise Invalid(f"unknown patch type: {_go(directive)} in map: {_go(patch)}")
    _apply_retain_keys(original, patch)
    _apply_element_orders(original, patch, schema)
    for key, value in patch.items():
        if key.startswith(DELETE_PRIMITIVE):
            _delete_from_primitive_list(original, key, value)
        elif value is None:
            original.pop(key, None)
        else:
            merged = _merge_value(original.get(key, _MISSING), value, _field(schema, key))
            if merged is _MISSING:
                original.pop(key, None)
            else:
                original[key] = merged
    return original


def _merge_value(current: Any, value: Any, field: _Field) -> Any:
    """The merged value of one field; _MISSING when the patch deletes it."""
    if isinstance(value, dict):
        base = current if isinstance(current, dict) and "replace" not in field.strategies else {}
        merged = _merge_map(base, value, field.schema)
        if merged is None:
            # Upstream empties a deleted map; decoded into the typed object an empty struct stays `{}`
            # while an empty string map is omitted, so mirror what a GET would then show.
            return {} if isinstance(current, dict) and not _is_string_map(field.schema) else _MISSING
        return merged
    if isinstance(value, list):
        if field.merging:
            return _merge_list(current if isinstance(current, list) else [], value, field)
        return _fresh_list(value, field)
    return value


def _is_string_map(schema: Schema) -> bool:
    return "additionalProperties" in schema and "properties" not in schema


def _fresh_list(items: list[Any], field: _Field) -> list[Any]:
    """A replacing list, with directives and nulls inside its maps processed away."""
    item_schema = schemas.items_schema(field.schema)
    result = []
    for item in items:
        if isinstance(item, dict):
            item = _merge_map({}, item, item_schema)
            if item is None:
                continue
        result.append(item)
    return result


def _merge_list(current: list[Any], patch: list[Any], field: _Field) -> list[Any]:
    if not current and not patch:
        return current
    if _element_kind(current, patch) != "map":
        return _order(_unique(current + patch), patch, current, "")
    key = field.merge_key
    if not key:
        raise Invalid("cannot merge lists without merge key")
    current, patch, replaced = _apply_item_directives(current, patch, key)
    if replaced:
        return _fresh_list(patch, field)
    merged = _merge_items(current, patch, key, schemas.items_schema(field.schema))
    return _order(merged, patch, current, key)


def _apply_item_directives(current: list[Any], patch: list[Any], key: str) -> tuple[list[Any], list[Any], bool]:
    """Handle `$patch` list items: deletions (by merge key) and replace; the rest is left to merge."""
    kept, replace = [], False
    for item in patch:
        if DIRECTIVE not in item:
            kept.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            wanted = _identity(item, key)
            current = [c for c in current if _identity(c, key, strict=False) != wanted]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise Invalid("merging lists cannot yet be specified in the patch")
        else:
            raise Invalid(f"unknown patch type: {_go(directive)} in map: {_go(item)}")
    return current, kept, replace


def _merge_items(current: list[Any], patch: list[Any], key: str, item_schema: Schema) -> list[Any]:
    result = list(current)
    for item in patch:
        wanted = _identity(item, key)
        index = _find(result, key, wanted)
        if index is None:
            result.append(_merge_map({}, item, item_schema))
        else:
            result[index] = _merge_map(result[index], item, item_schema)
    return result


def _delete_from_primitive_list(original: dict[str, Any], directive: str, values: Any) -> None:
    name = _directive_target(directive, DELETE_PRIMITIVE)
    if values is None:
        original.pop(name, None)
        return
    current = original.get(name)
    if not isinstance(current, list) or not isinstance(values, list) or not (current or values):
        return
    if _element_kind(current, values) == "map":
        raise BadRequest("invalid patch format of primitive list")
    doomed = {_identity(v, "") for v in values}
    original[name] = [v for v in current if _identity(v, "") not in doomed]


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """`$retainKeys` clears every live key it does not list; the patch may only set listed keys."""
    if RETAIN_KEYS not in patch:
        return
    keys = patch.pop(RETAIN_KEYS)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise BadRequest("invalid patch format of retainKeys")
    retained = set(keys)
    for key, value in patch.items():
        directive = key.startswith((DELETE_PRIMITIVE, SET_ORDER))
        if value is not None and not directive and key not in retained:
            raise BadRequest("invalid patch format of retainKeys")
    for key in [k for k in original if k not in retained]:
        del original[key]


def _apply_element_orders(original: dict[str, Any], patch: dict[str, Any], schema: Schema) -> None:
    """Merge each list that has a `$setElementOrder` and order it; the list leaves the patch."""
    for directive in [k for k in patch if k.startswith(SET_ORDER)]:
        order = patch.pop(directive)
        name = _directive_target(directive, SET_ORDER)
        field = _field(schema, name)
        current, value = original.get(name, _MISSING), patch.pop(name, _MISSING)
        for given in (order, current, value):
            if given is not _MISSING and not isinstance(given, list):
                raise Invalid(f"expected a []interface {{}}, but received a {_go_type(given)}")
        _check_order(value if value is not _MISSING else [], order, field.merge_key)
        if current is _MISSING and value is _MISSING:
            continue
        base = [] if current is _MISSING else current
        live = base if value is _MISSING or not field.merging else _live_order(base, value, field.merge_key)
        merged = base if value is _MISSING else _merge_value(base, value, field)
        original[name] = _order(merged, order, live, field.merge_key)


def _live_order(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    """The live list as upstream's `$setElementOrder` ordering reads it. Upstream deletes items from,
    and appends new items to, the live Go slice in place, so the slice it later orders by has deleted
    slots filled by the following items and then by new items. Mirroring that keeps the result of a
    `kubectl apply` that both removes and adds items identical to a real apiserver's."""
    if not key or any(not isinstance(item, dict) for item in [*current, *patch]):
        return current
    buffer, length = list(current), len(current)
    for item in patch:
        if item.get(DIRECTIVE) == "delete" and key in item:
            doomed = _identity(item, key)
            while (k := _find(buffer[:length], key, doomed)) is not None:
                buffer[k:length - 1] = buffer[k + 1:length]
                length -= 1
    if any(item.get(DIRECTIVE) == "replace" for item in patch):
        return buffer
    present = {_identity(item, key, strict=False) for item in buffer[:length]}
    for item in patch:
        if DIRECTIVE in item or key not in item or _identity(item, key) in present:
            continue
        present.add(_identity(item, key))
        if length < len(buffer):
            buffer[length] = item
        length += 1
    return buffer


def _find(items: list[Any], key: str, wanted: Any) -> int | None:
    return next((i for i, item in enumerate(items) if _identity(item, key, strict=False) == wanted), None)


def _check_order(patch: list[Any], order: list[Any], key: str) -> None:
    """Every (non-deleting) patch item must appear in the `$setElementOrder` list, in the same order."""
    if not order:
        return
    items = [p for p in patch if not (key and _is_delete(p))]
    p = s = 0
    while p < len(items) and s < len(order):
        if isinstance(items[p], dict) and DIRECTIVE in items[p]:
            p += 1
            continue
        if _identity(items[p], key) == _identity(order[s], key):
            p += 1
        s += 1
    if p < len(items):
        raise Invalid(f"The order in patch list:\n{_go(patch)}\n doesn't match {SET_ORDER} list:\n{_go(order)}\n")


def _order(merged: list[Any], order: list[Any], server: list[Any], key: str) -> list[Any]:
    """Upstream's ordering: items named by `order` in that order, the others in live (`server`) order,
    interleaved so that a server-only item goes before the ordered item it preceded in the live list."""
    wanted = _positions(order, key)
    live = _positions(server, key, strict=False)
    ordered = sorted((m for m in merged if _identity(m, key, strict=False) in wanted),
                     key=lambda m: wanted[_identity(m, key, strict=False)])
    others = sorted((m for m in merged if _identity(m, key, strict=False) not in wanted),
                    key=lambda m: live.get(_identity(m, key, strict=False), len(live)))
    result: list[Any] = []
    while ordered or others:
        if not ordered or (others and _before(others[0], ordered[0], live, key)):
            result.append(others.pop(0))
        else:
            result.append(ordered.pop(0))
    return result


def _before(left: Any, right: Any, live: dict[Any, int], key: str) -> bool:
    li, ri = live.get(_identity(left, key, strict=False)), live.get(_identity(right, key, strict=False))
    return li is not None and ri is not None and li < ri


def _positions(items: list[Any], key: str, *, strict: bool = True) -> dict[Any, int]:
    positions: dict[Any, int] = {}
    for index, item in enumerate(items):
        positions.setdefault(_identity(item, key, strict=strict), index)
    return positions


def _identity(item: Any, key: str, *, strict: bool = True) -> Any:
    """What an item is matched by: its merge-key value, or itself for scalars; hashable and type-aware
    (JSON `true` is not `1`, while `1` and `1.0` are one number, as in Go's decoded JSON)."""
    if key:
        if not isinstance(item, dict) or key not in item:
            if not strict:
                return ("missing", id(item))
            if not isinstance(item, dict):
                raise Invalid(f"expected a map[string]interface {{}}, but received a {_go_type(item)}")
            raise Invalid(f"map: {_go(item)} does not contain declared merge key: {key}")
        item = item[key]
    if isinstance(item, bool):
        return ("bool", item)
    if isinstance(item, int | float):
        return ("number", item)
    if isinstance(item, str) or item is None:
        return ("scalar", item)
    return ("json", json.dumps(item, sort_keys=True))


def _unique(items: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    result = []
    for item in items:
        ident = _identity(item, "")
        if ident not in seen:
            seen.add(ident)
            result.append(item)
    return result


def _element_kind(*lists: list[Any]) -> str:
    """The one kind of element the lists hold ("map" or a scalar type); mixed kinds are an error."""
    kinds = {_kind(item) for items in lists for item in items}
    if "list" in kinds:
        raise Invalid("lists of lists are not supported")
    if len(kinds) > 1:
        raise Invalid(f"list element types are not identical: {_go(list(lists))}")
    return kinds.pop() if kinds else "map"


def _kind(item: Any) -> str:
    if isinstance(item, dict):
        return "map"
    if isinstance(item, list):
        return "list"
    # Go decodes 1 as int64 and 1.5 as float64; treating both as one kind avoids a spurious error.
    return "number" if isinstance(item, int | float) and not isinstance(item, bool) else _go_type(item)


def _is_delete(item: Any) -> bool:
    if not isinstance(item, dict):
        raise Invalid(f"expected a map[string]interface {{}}, but received a {_go_type(item)}")
    return bool(item.get(DIRECTIVE) == "delete")


def _directive_target(directive: str, prefix: str) -> str:
    head, sep, name = directive.partition("/")
    if head != prefix or not sep:
        kind = "primitive list" if prefix == DELETE_PRIMITIVE else "setElementOrder list"
        raise BadRequest(f"invalid patch format of {kind}")
    return name


def json_kind(value: Any) -> str:
    """The JSON type name Go's decoder uses in its errors (`object`, `array`, `string`, ...)."""
    kinds = {dict: "object", list: "array", str: "string", bool: "bool", type(None): "null"}
    return kinds.get(type(value), "number")


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    kinds = {str: "string", bool: "bool", int: "int64", float: "float64"}
    return kinds.get(type(value), "<nil>")


def _go(value: Any) -> str:
    """Go's `%v` rendering of decoded JSON, which upstream's error messages use."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

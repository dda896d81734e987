"""Label and field selectors: parsing, matching, canonical text, and the fields each kind exposes.

Label selectors follow upstream `k8s.io/apimachinery/pkg/labels`: `k=v`, `k==v`, `k!=v`,
`k in (a,b)`, `k notin (a,b)`, `k`, `!k` (and `k>n`, `k<n`), comma-ANDed; keys and values are
validated as label keys/values. Requirements are kept sorted by key, values sorted and de-duplicated
when parsed from text, so `str()` gives upstream's canonical form. Field selectors follow
`k8s.io/apimachinery/pkg/fields`: `f=v`, `f==v`, `f!=v`, comma-ANDed, with `\\,` `\\=` `\\\\` escapes and
empty values allowed; a missing field reads as "".

Each kind accepts only the field labels its upstream conversion function accepts (`field label not
supported: x`, or the generic `"x" is not a known field selector` for kinds with only metadata);
`validate_field_selector` checks that and returns the selector with labels renamed the way upstream
converts them (events.k8s.io `regarding.kind` -> `involvedObject.kind`, pods `spec.host` ->
`spec.nodeName`). `object_fields` also carries those aliases, so an unconverted selector matches too.
All parse errors are BadRequest with upstream's message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubelite.objects.errors import BadRequest

# ---------------------------------------------------------------------------------------------
# label keys and values

_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_RE = re.compile(f"^{_NAME}$")
_VALUE_RE = re.compile(f"^({_NAME})?$")
_DNS1123 = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS1123_RE = re.compile(f"^{_DNS1123}$")
_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
             "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
             f"validation is '{_NAME}')")
_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
              "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
              f"'12345', regex used for validation is '({_NAME})?')")
_DNS_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            f"and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            f"validation is '{_DNS1123}')")


def label_key_errors(key: str) -> list[str]:
    """Upstream's IsQualifiedName: `[prefix/]name`, prefix a DNS subdomain, name at most 63 chars."""
    parts = key.split("/")
    if len(parts) > 2:
        return [f"a valid label key {_NAME_MSG} with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"]
    errors = _prefix_errors(parts[0]) if len(parts) == 2 else []
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name.encode()) > 63:
        errors.append("name part must be no more than 63 bytes")
    if not _NAME_RE.match(name):
        errors.append("name part " + _NAME_MSG)
    return errors


def _prefix_errors(prefix: str) -> list[str]:
    if not prefix:
        return ["prefix part must be non-empty"]
    errors = ["prefix part must be no more than 253 bytes"] if len(prefix.encode()) > 253 else []
    if not _DNS1123_RE.match(prefix):
        errors.append("prefix part " + _DNS_MSG)
    return errors


def label_value_errors(value: str) -> list[str]:
    errors = ["must be no more than 63 bytes"] if len(value.encode()) > 63 else []
    if not _VALUE_RE.match(value):
        errors.append(_VALUE_MSG)
    return errors


def _field_error(path: str, value: Any, detail: str) -> str:
    """A field.Invalid error rendered as upstream renders it (`path: Invalid value: "v": detail`)."""
    shown = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return f"{path}: Invalid value: {shown}: {detail}"


def _aggregate(errors: list[str]) -> str:
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# ---------------------------------------------------------------------------------------------
# label selectors

OPERATORS = ("in", "notin", "=", "==", "!=", "gt", "lt", "exists", "!")
_BINARY = ("in", "notin", "=", "==", "!=", "gt", "lt")
_UNARY = ("exists", "!")
_SYMBOLS = {"=": "=", "==": "==", "!=": "!=", ">": "gt", "<": "lt", "!": "!"}


@dataclass(frozen=True)
class Requirement:
    """One label requirement; `operator` is upstream's selection.Operator string
    (`in`, `notin`, `=`, `==`, `!=`, `gt`, `lt`, `exists`, `!` for does-not-exist)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "exists":
            return self.key in labels
        if self.operator == "!":
            return self.key not in labels
        if self.key not in labels:
            return self.operator in ("notin", "!=")
        value = labels[self.key]
        if self.operator in ("in", "=", "=="):
            return value in self.values
        if self.operator in ("notin", "!="):
            return value not in self.values
        return _compare(self.operator, value, self.values)

    def __str__(self) -> str:
        if self.operator in ("exists", "!"):
            return ("!" if self.operator == "!" else "") + self.key
        values = ",".join(sorted(self.values)) if len(self.values) > 1 else "".join(self.values)
        if self.operator in ("in", "notin"):
            return f"{self.key} {self.operator} ({values})"
        return self.key + {"gt": ">", "lt": "<"}.get(self.operator, self.operator) + values


_INT_RE = re.compile("[-+]?[0-9]+")


def _compare(operator: str, value: str, bounds: tuple[str, ...]) -> bool:
    # Go's strconv.ParseInt: no spaces or underscores, which Python's int() would accept.
    if len(bounds) != 1 or not _INT_RE.fullmatch(value) or not _INT_RE.fullmatch(bounds[0]):
        return False
    actual, bound = int(value), int(bounds[0])
    return actual > bound if operator == "gt" else actual < bound


@dataclass(frozen=True)
class LabelSelector:
    """AND of requirements, sorted by key. `nothing` is upstream's labels.Nothing() (a nil
    metav1.LabelSelector): it matches no object and prints as ""."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (it matches every object)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The single value the selector demands for `key` (`k=v`, `k==v`, `k in (v)`), else None."""
        for r in self.requirements:
            if r.key == key:
                exact = r.operator in ("=", "==", "in") and len(r.values) == 1
                return r.values[0] if exact else None
        return None

    def to_string(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __str__(self) -> str:
        return self.to_string()


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def new_requirement(key: str, operator: str, values: list[str] | tuple[str, ...]) -> Requirement:
    """Upstream's labels.NewRequirement: validates key, operator arity and values."""
    values = list(values)
    errors = [_field_error("key", key, "; ".join(errs))] if (errs := label_key_errors(key)) else []
    errors += _arity_errors(operator, values)
    for i, value in enumerate(values):
        if errs := label_value_errors(value):
            errors.append(_field_error(f"values[{i}][{key}]", value, "; ".join(errs)))
    if errors:
        raise BadRequest(_aggregate(errors))
    return Requirement(key, operator, tuple(values))


def _arity_errors(operator: str, values: list[str]) -> list[str]:
    if operator in ("in", "notin") and not values:
        return [_field_error("values", values, "for 'in', 'notin' operators, values set can't be empty")]
    if operator in ("=", "==", "!=") and len(values) != 1:
        return [_field_error("values", values, "exact-match compatibility requires one single value")]
    if operator in _UNARY and values:
        return [_field_error("values", values, "values set must be empty for exists and does not exist")]
    if operator in ("gt", "lt"):
        errors = [] if len(values) == 1 else [
            _field_error("values", values, "for 'Gt', 'Lt' operators, exactly one value is required")]
        return errors + [_field_error(f"values[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer")
                         for i, v in enumerate(values) if not _INT_RE.fullmatch(v)]
    if operator not in OPERATORS:
        supported = ", ".join(f'"{o}"' for o in _BINARY + _UNARY)
        return [f'operator: Unsupported value: "{operator}": supported values: {supported}']
    return []


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a `labelSelector` query value; "" selects everything."""
    return LabelSelector(tuple(sorted(_LabelParser(text).parse(), key=lambda r: r.key)))


_WHITESPACE = " \t\r\n"
_SPECIAL = "=!(),><"
_END = ("end", "")


def _lex(text: str) -> Iterator[tuple[str, str]]:
    """Tokens as (kind, literal); kind is `id`, `end`, a keyword (`in`, `notin`) or a symbol."""
    pos = 0
    while True:
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= len(text):
            yield _END
            return
        start = pos
        if text[pos] in _SPECIAL:
            while pos < len(text) and text[pos] in _SPECIAL and text[start:pos + 1] in _TOKENS:
                pos += 1
            yield text[start:pos], text[start:pos]
            continue
        while pos < len(text) and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        yield (word if word in ("in", "notin") else "id"), word


_TOKENS = {"=", "==", "!=", "!", "(", ")", ",", ">", "<"}


class _LabelParser:
    """Recursive-descent parser over upstream's grammar, with its error messages."""

    def __init__(self, text: str) -> None:
        self.tokens = list(_lex(text))
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[str, str]:
        return self._value_context(self.tokens[self.pos], values)

    def take(self, values: bool = True) -> tuple[str, str]:
        token = self.peek(values)
        self.pos += 1
        return token

    @staticmethod
    def _value_context(token: tuple[str, str], values: bool) -> tuple[str, str]:
        # In value position `in`/`notin` are plain identifiers (`k in (in)`).
        return ("id", token[1]) if values and token[0] in ("in", "notin") else token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.peek()
            if kind == "end":
                return requirements
            if kind not in ("id", "!"):
                raise BadRequest(f"found '{literal}', expected: !, identifier, or 'end of string'")
            requirements.append(self.requirement())
            kind, literal = self.take()
            if kind == "end":
                return requirements
            if kind != ",":
                raise BadRequest(f"found '{literal}', expected: ',' or 'end of string'")
            if (after := self.peek())[0] not in ("id", "!"):
                raise BadRequest(f"found '{after[1]}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        try:
            key, operator = self.key_and_operator()
            if operator in _UNARY:
                return new_requirement(key, operator, [])
            operator = self.operator()
            values = self.value_set() if operator in ("in", "notin") else self.exact_value()
            return new_requirement(key, operator, sorted(values))
        except BadRequest as exc:
            raise BadRequest(f"unable to parse requirement: {exc.message}") from None

    def key_and_operator(self) -> tuple[str, str]:
        kind, literal = self.take()
        negated = kind == "!"
        if negated:
            kind, literal = self.take()
        if kind != "id":
            raise BadRequest(f"found '{literal}', expected: identifier")
        if errs := label_key_errors(literal):
            raise BadRequest(_field_error("<nil>", literal, "; ".join(errs)))
        if negated:
            return literal, "!"
        return literal, "exists" if self.peek()[0] in ("end", ",") else ""

    def operator(self) -> str:
        kind, literal = self.take(values=False)
        if kind in ("in", "notin"):
            return kind
        if kind in _SYMBOLS and kind != "!":
            return _SYMBOLS[kind]
        raise BadRequest(f"found '{literal}', expected: {', '.join(_BINARY)}")

    def value_set(self) -> set[str]:
        kind, literal = self.take()
        if kind != "(":
            raise BadRequest(f"found '{literal}' expected: '('")
        kind, literal = self.peek()
        if kind == ")":
            self.take()
            return {""}
        if kind not in ("id", ","):
            raise BadRequest(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        self.take()  # the ')' identifiers() stopped at
        return values

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            kind, literal = self.take()
            if kind == "id":
                values.add(literal)
                after = self.peek()
                if after[0] == ")":
                    return values
                if after[0] != ",":
                    raise BadRequest(f"found '{after[1]}', expected: ',' or ')'")
            elif kind == ",":
                # `(,a)`, `(a,,b)` and `(a,)` all include the empty value.
                if not values or self.peek()[0] in (",", ")"):
                    values.add("")
                if self.peek()[0] == ")":
                    return values
            else:
                raise BadRequest(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.peek()[0] in ("end", ","):
            return {""}
        kind, literal = self.take()
        if kind == "id":
            return {literal}
        raise BadRequest(f"found '{literal}', expected: identifier")


_EXPRESSION_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def selector_from_dict(selector: Mapping[str, Any] | None) -> LabelSelector:
    """Upstream's LabelSelectorAsSelector: None matches nothing, {} matches everything."""
    if selector is None:
        return NOTHING
    if not isinstance(selector, Mapping):
        raise BadRequest("invalid label selector: it must be an object with matchLabels and matchExpressions")
    labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(labels, Mapping) or not isinstance(expressions, list):
        raise BadRequest("invalid label selector: matchLabels must be a map and matchExpressions a list")
    requirements = [new_requirement(str(k), "=", [_text(v)]) for k, v in labels.items()]
    requirements += [_expression(e) for e in expressions]
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


def _expression(expr: Any) -> Requirement:
    if not isinstance(expr, Mapping):
        raise BadRequest("invalid label selector: each matchExpressions entry must be an object")
    operator = expr.get("operator")
    if operator not in _EXPRESSION_OPERATORS:
        raise BadRequest(f"{json.dumps(operator if isinstance(operator, str) else '')} "
                         "is not a valid label selector operator")
    values = expr.get("values") or []
    if not isinstance(values, list):
        raise BadRequest("invalid label selector: values must be a list of strings")
    return new_requirement(_text(expr.get("key")), _EXPRESSION_OPERATORS[operator], [_text(v) for v in values])


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"invalid label selector: {json.dumps(value)} is not a string")
    return value


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """The canonical text of a metav1.LabelSelector (`app=hello,pod-template-hash=abc`), as Scale
    status and `kubectl get -o wide` show it; "" for an empty or nil selector."""
    return selector_from_dict(selector).to_string()


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """Upstream's metav1.FormatLabelSelector for table columns: `<none>` when empty, `<error>` when invalid."""
    try:
        return selector_to_string(selector) or "<none>"
    except BadRequest:
        return "<error>"


# ---------------------------------------------------------------------------------------------
# field selectors


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" or "!=" (upstream's selection.Equals / NotEquals; "==" parses as "=")
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        return (fields.get(self.field, "") == self.value) == (self.operator == "=")

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """AND of field requirements, in upstream's order (terms sorted as written)."""

    requirements: tuple[FieldRequirement, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def requires_exact_match(self, name: str) -> str | None:
        """The value the selector pins `name` to with `=`, e.g. `metadata.name`, else None."""
        return next((r.value for r in self.requirements if r.field == name and r.operator == "="), None)

    def to_string(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __str__(self) -> str:
        return self.to_string()


def escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def parse_field_selector(text: str) -> FieldSelector:
    """Parse a `fieldSelector` query value; "" selects everything. No whitespace is trimmed."""
    requirements = []
    for term in sorted(_split_terms(text)):
        if term:
            requirements.append(_field_term(text, term))
    # A term with neither field nor value (`=`, `!=`) selects everything upstream, so it is dropped.
    return FieldSelector(tuple(r for r in requirements if r.field or r.value))


def _split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms, start, escaped = [], 0, False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:i])
            start = i + 1
    return terms + [text[start:]]


def _field_term(text: str, term: str) -> FieldRequirement:
    for i in range(len(term)):
        for operator in ("!=", "==", "="):
            if term.startswith(operator, i):
                value = _unescape(term[i + len(operator):])
                return FieldRequirement(term[:i], "!=" if operator == "!=" else "=", value)
    raise BadRequest(f"invalid selector: '{text}'; can't understand '{term}'")


def _unescape(raw: str) -> str:
    out, escaped = [], False
    for char in raw:
        if escaped:
            if char not in "\\,=":
                raise BadRequest(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            # Upstream prints the rune's code point here (61 for '=').
            raise BadRequest(f"invalid field selector: unescaped character in value: {ord(char)}")
        else:
            out.append(char)
    if escaped:
        raise BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# the fields each kind exposes, and the labels its selectors may use

_META = ("metadata.name", "metadata.namespace")
_EVENT = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
          "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
          "reason", "reportingComponent", "source", "type", *_META)
_EVENTS_V1 = {"regarding." + f.split(".", 1)[1]: f for f in _EVENT if f.startswith("involvedObject.")}
_EVENTS_V1.update({"reportingController": "reportingComponent", "reason": "reason", "source": "source",
                   "type": "type", "metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace"})

# group_resource -> {accepted selector label: the field it selects}; kinds absent here accept only
# metadata.name and metadata.namespace, with upstream's generic message.
_LABELS: dict[str, dict[str, str]] = {
    "pods": {f: f for f in (*_META, "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                            "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
                            "status.podIPs", "status.nominatedNodeName")} | {"spec.host": "spec.nodeName"},
    "nodes": {f: f for f in ("metadata.name", "spec.unschedulable")},
    "namespaces": {f: f for f in ("metadata.name", "status.phase")},
    "events": {f: f for f in _EVENT},
    "events.events.k8s.io": _EVENTS_V1,
    "secrets": {f: f for f in (*_META, "type")},
    "services": {f: f for f in (*_META, "spec.clusterIP", "spec.type")},
    "replicationcontrollers": {f: f for f in (*_META, "status.replicas")},
}


def validate_field_selector(group_resource: str, selector: FieldSelector) -> FieldSelector:
    """Reject labels the kind does not support (BadRequest, upstream's message); return the selector
    with labels converted to the field names `object_fields` uses."""
    labels = _LABELS.get(group_resource)
    converted = []
    for r in selector.requirements:
        if labels is None and r.field not in _META:
            raise BadRequest(f'"{r.field}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        if labels is not None and r.field not in labels:
            raise BadRequest(f"field label not supported: {r.field}")
        converted.append(FieldRequirement(labels[r.field] if labels else r.field, r.operator, r.value))
    return FieldSelector(tuple(converted))


def object_fields(group_resource: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The selectable fields of an object (upstream's GetAttrs/ToSelectableFields), plus the aliases
    its selector labels accept."""
    meta = _get(obj, "metadata")
    fields = {"metadata.name": _str(meta.get("name")), "metadata.namespace": _str(meta.get("namespace"))}
    extra = _KIND_FIELDS.get(group_resource)
    if extra is not None:
        fields.update(extra(obj))
    for alias, target in _LABELS.get(group_resource, {}).items():
        fields.setdefault(alias, fields.get(target, ""))
    return fields


def _pod_fields(pod: Mapping[str, Any]) -> dict[str, str]:
    spec, status = _get(pod, "spec"), _get(pod, "status")
    ips = status.get("podIPs")
    first = ips[0] if isinstance(ips, list) and ips and isinstance(ips[0], Mapping) else {}
    first_ip = first.get("ip") if first else status.get("podIP")
    return {"spec.nodeName": _str(spec.get("nodeName")), "spec.restartPolicy": _str(spec.get("restartPolicy")),
            "spec.schedulerName": _str(spec.get("schedulerName")),
            "spec.serviceAccountName": _str(spec.get("serviceAccountName")),
            "spec.hostNetwork": _bool(spec.get("hostNetwork")), "status.phase": _str(status.get("phase")),
            "status.podIP": _str(first_ip), "status.nominatedNodeName": _str(status.get("nominatedNodeName"))}


def _event_fields(event: Mapping[str, Any]) -> dict[str, str]:
    """Both core/v1 and events.k8s.io/v1 shapes map onto the core field names, as upstream stores once."""
    ref = _get(event, "involvedObject") or _get(event, "regarding")
    source = _get(event, "source") or _get(event, "deprecatedSource")
    reporting = _str(event.get("reportingComponent") or event.get("reportingController"))
    fields = {f"involvedObject.{k}": _str(ref.get(k))
              for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
    fields.update({"reason": _str(event.get("reason")), "reportingComponent": reporting,
                   "source": _str(source.get("component")) or reporting, "type": _str(event.get("type"))})
    return fields


_KIND_FIELDS = {
    "pods": _pod_fields,
    "events": _event_fields,
    "events.events.k8s.io": _event_fields,
    "nodes": lambda o: {"spec.unschedulable": _bool(_get(o, "spec").get("unschedulable"))},
    "namespaces": lambda o: {"status.phase": _str(_get(o, "status").get("phase"))},
    "secrets": lambda o: {"type": _str(o.get("type"))},
    "services": lambda o: {"spec.clusterIP": _str(_get(o, "spec").get("clusterIP")),
                           "spec.type": _str(_get(o, "spec").get("type"))},
    "replicasets.apps": lambda o: {"status.replicas": _int(_get(o, "status").get("replicas"))},
    "replicationcontrollers": lambda o: {"status.replicas": _int(_get(o, "status").get("replicas"))},
}


def _get(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _bool(value: Any) -> str:
    return "true" if value is True else "false"


def _int(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"

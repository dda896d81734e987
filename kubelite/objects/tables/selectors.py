"""Label maps and label selectors rendered as strings, as apimachinery's `labels` package does.

`format_labels` is `labels.FormatLabels`, `selector_string` is
`metav1.LabelSelectorAsSelector(s).String()` and `format_label_selector` is
`metav1.FormatLabelSelector`. Requirements are sorted by key; set values are sorted on output.
"""

from __future__ import annotations

import re
from typing import Any

from kubelite.objects.tables.common import NONE, Obj, get, items, mapping, strings, text

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_OPERATORS = {"In": " in ", "NotIn": " notin ", "Exists": "", "DoesNotExist": ""}


def format_labels(labels: Any) -> str:
    """`k1=v1,k2=v2` with sorted keys, or `<none>` for an empty map."""
    pairs = mapping(labels)
    rendered = ",".join(f"{key}={pairs[key]}" for key in sorted(pairs))
    return rendered or NONE


def format_label_selector(selector: Any) -> str:
    """The selector string, `<none>` when it selects everything or nothing, `<error>` when invalid."""
    try:
        rendered = selector_string(selector)
    except ValueError:
        return "<error>"
    return rendered or NONE


def selector_string(selector: Any) -> str:
    """The canonical string of a LabelSelector; "" for nil or empty; ValueError when invalid."""
    if not isinstance(selector, dict) or not (mapping(selector, "matchLabels") or items(selector, "matchExpressions")):
        return ""
    requirements = [(key, _equals(key, value)) for key, value in mapping(selector, "matchLabels").items()]
    requirements += [(text(expr, "key"), _expression(expr)) for expr in items(selector, "matchExpressions")]
    requirements.sort(key=lambda pair: pair[0])
    return ",".join(rendered for _, rendered in requirements)


def _equals(key: str, value: Any) -> str:
    _check_key(key)
    _check_value(value)
    return f"{key}={value}"


def _expression(expr: Obj) -> str:
    key, operator = text(expr, "key"), get(expr, "operator")
    if operator not in _OPERATORS:
        raise ValueError(f"{operator!r} is not a valid label selector operator")
    _check_key(key)
    values = strings(expr, "values")
    if operator in ("Exists", "DoesNotExist"):
        if values:
            raise ValueError("values set must be empty for exists and does not exist")
        return key if operator == "Exists" else f"!{key}"
    if not values:
        raise ValueError("for 'in', 'notin' operators, values set can't be empty")
    for value in values:
        _check_value(value)
    return f"{key}{_OPERATORS[str(operator)]}({','.join(sorted(values))})"


def _check_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ValueError(f"invalid label key prefix {prefix!r}")
    if not name or len(name) > 63 or not _NAME.match(name):
        raise ValueError(f"invalid label key {key!r}")


def _check_value(value: Any) -> None:
    if not isinstance(value, str) or len(value) > 63 or (value and not _NAME.match(value)):
        raise ValueError(f"invalid label value {value!r}")

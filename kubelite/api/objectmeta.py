"""Small helpers over object metadata, shared by storage, strategies and handlers."""

from __future__ import annotations

import copy
import secrets
import string
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

Obj = dict[str, Any]

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # upstream's: no vowels, no confusable digits


def now_rfc3339(offset_seconds: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(base: str) -> str:
    """`base` + 5 random characters, as upstream's SimpleNameGenerator (base cut to fit 63)."""
    base = base[: 63 - 5]
    return base + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


def deep_copy(obj: Obj) -> Obj:
    return copy.deepcopy(obj)


def is_valid_rv(value: str) -> bool:
    return bool(value) and all(c in string.digits for c in value)


def strip_spec_noise(obj: Obj) -> Obj:
    """The object without metadata and status: what a generation bump is judged on."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}

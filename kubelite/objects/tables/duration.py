"""Human-readable durations and timestamps, as kubectl's AGE columns show them.

`human_duration` follows apimachinery's `util/duration.HumanDuration`: whole seconds are truncated
toward zero, a clock skew of up to (but excluding) two seconds into the future reads as `0s`, and
anything further in the future is `<invalid>`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

UNKNOWN = "<unknown>"

_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_YEAR = 365 * _DAY


def human_duration(seconds: float) -> str:
    """`2m`, `9m59s`, `3h1m`, `2d1h`, `367d`, `2y1d`, `8y` ... exactly as upstream HumanDuration."""
    whole = math.trunc(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 2 * _MINUTE:
        return f"{whole}s"
    minutes = whole // _MINUTE
    if minutes < 10:
        return _two_units(minutes, "m", whole % _MINUTE, "s")
    if minutes < 3 * 60:
        return f"{minutes}m"
    hours = whole // _HOUR
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _two_units(hours // 24, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return _two_units(hours // 24 // 365, "y", (hours // 24) % 365, "d")
    return f"{hours // 24 // 365}y"


def _two_units(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    if minor == 0:
        return f"{major}{major_unit}"
    return f"{major}{major_unit}{minor}{minor_unit}"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 `Time` or `MicroTime` string as an aware datetime; None when unset or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def since(value: Any, now: datetime) -> str:
    """Upstream `translateTimestampSince`: the human duration from `value` to now, or `<unknown>`."""
    moment = value if isinstance(value, datetime) else parse_time(value)
    if moment is None:
        return UNKNOWN
    return human_duration((now - moment).total_seconds())


def aware(now: datetime | None) -> datetime:
    """`now` as an aware datetime (naive values are taken as UTC); the current time when None."""
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)

"""resource.Quantity: parsing, comparison and the canonical string upstream serializes.

Quantities are exact (Fractions). Parsing follows upstream's `ParseQuantity` (sign, digits,
optional fraction, then a suffix: binary `Ki`..`Ei`, decimal `n`..`E`, or an `e`/`E` exponent) and
rounds non-zero values up to nano precision. `str()` gives `CanonicalizeBytes`: e.g. `1024Mi` ->
`1Gi`, `0.5` -> `500m`, `1500` -> `1500`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

FORMAT_ERROR = ("quantities must match the regular expression "
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
SUFFIX_ERROR = "unable to parse quantity's suffix"

DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT = "DecimalSI", "BinarySI", "DecimalExponent"
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL.items()}
_BINARY_BY_EXP = {v: k for k, v in _BINARY.items()}
_NUMBER = re.compile(r"([+-]?)0*([0-9]*)(?:\.([0-9]*))?")
_SUFFIX = re.compile(r"[eEinumkKMGTP]*[-+]?[0-9]*")
_NANO = Fraction(1, 10**9)


class QuantityError(ValueError):
    """A string that is not a quantity; the message is upstream's."""


@dataclass(frozen=True)
class Quantity:
    value: Fraction
    format: str = DECIMAL_SI

    def __str__(self) -> str:
        return canonical(self)

    def round_up(self, scale: int) -> Quantity:
        """Round away from zero to 10**scale (upstream's `RoundUp`)."""
        step = Fraction(10) ** scale
        return Quantity(_sign(self.value) * math.ceil(abs(self.value) / step) * step, self.format)


def parse_quantity(text: Any) -> Quantity:
    """A JSON value (string or number) as a Quantity; raises QuantityError like the decoder."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise QuantityError(FORMAT_ERROR)
    s = text.strip() if isinstance(text, str) else _number_text(text)
    if not s:
        raise QuantityError(FORMAT_ERROR)
    number = _NUMBER.match(s)
    assert number is not None  # the pattern matches the empty prefix at least
    suffix = s[number.end():]
    if not _SUFFIX.fullmatch(suffix):
        raise QuantityError(FORMAT_ERROR)
    base, exponent, fmt = _interpret(suffix)
    sign, whole, frac = number.group(1), number.group(2) or "0", number.group(3) or ""
    value = Fraction(int(whole + frac or "0"), 10 ** len(frac)) * Fraction(base) ** exponent
    return _finish(-value if sign == "-" else value, fmt)


def _number_text(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def _interpret(suffix: str) -> tuple[int, int, str]:
    if suffix in _BINARY:
        return 2, _BINARY[suffix], BINARY_SI
    if suffix in _DECIMAL:
        return 10, _DECIMAL[suffix], DECIMAL_SI
    if suffix[:1] in ("e", "E") and re.fullmatch(r"[-+]?[0-9]+", suffix[1:]):
        return 10, int(suffix[1:]), DECIMAL_EXPONENT
    raise QuantityError(SUFFIX_ERROR)


def _finish(value: Fraction, fmt: str) -> Quantity:
    value = _sign(value) * math.ceil(abs(value) / _NANO) * _NANO
    if fmt == BINARY_SI and 0 < value < 1:
        fmt = DECIMAL_SI
    return Quantity(value, fmt)


def _sign(value: Fraction) -> int:
    return (value > 0) - (value < 0)


def canonical(q: Quantity) -> str:
    """Upstream's `Quantity.String()`."""
    if q.value == 0:
        return "0"
    fmt = q.format
    if fmt == BINARY_SI and (-1024 < q.value < 1024 or q.value.denominator != 1):
        fmt = DECIMAL_SI
    if fmt == BINARY_SI:
        return _binary(q.value)
    mantissa, exponent = _decimal_parts(q.value)
    if fmt == DECIMAL_EXPONENT:
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    return f"{mantissa}{_DECIMAL_BY_EXP.get(exponent, '')}"


def _decimal_parts(value: Fraction) -> tuple[int, int]:
    exponent = 0
    while value.denominator != 1:
        value *= 10
        exponent -= 1
    mantissa = int(value)
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    shift = exponent % 3
    return mantissa * 10**shift, exponent - shift


def _binary(value: Fraction) -> str:
    mantissa, exponent = int(value), 0
    while mantissa % 1024 == 0 and exponent < 60:
        mantissa //= 1024
        exponent += 10
    return f"{mantissa}{_BINARY_BY_EXP.get(exponent, '')}"


def try_parse(text: Any) -> Quantity | None:
    try:
        return parse_quantity(text)
    except QuantityError:
        return None

"""Decimal strings <-> raw fixed-point integers, at the edge of the system only.

A raw value is an int64 count of ``10**-precision`` units: with precision 2, ``"101.25"`` is
``10125``. Conversions are exact: a value with more decimals than the precision is refused,
never rounded. Floats are refused: they cannot represent most decimal prices exactly.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def to_raw(value: str | Decimal | int, precision: int) -> int:
    """Return the raw int64 of a decimal string / Decimal / int at ``precision`` decimals.

    Raises ValueError when the value has more decimals than ``precision``, is not finite, or
    does not fit int64; TypeError for floats.
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError("use a decimal string or Decimal, not float")
    if not 0 <= precision <= 18:
        raise ValueError("precision must be in 0..18")
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    scaled = d.scaleb(precision)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value!r} has more than {precision} decimals")
    raw = int(scaled)
    if not INT64_MIN <= raw <= INT64_MAX:
        raise ValueError(f"{value!r} does not fit int64 at precision {precision}")
    return raw


def from_raw(raw: int, precision: int) -> str:
    """Return the decimal string of a raw value (``from_raw(10125, 2) == "101.25"``)."""
    if not 0 <= precision <= 18:
        raise ValueError("precision must be in 0..18")
    sign = "-" if raw < 0 else ""
    digits = str(abs(int(raw)))
    if precision == 0:
        return sign + digits
    digits = digits.rjust(precision + 1, "0")
    return f"{sign}{digits[:-precision]}.{digits[-precision:]}"

"""Quantities with units (spec section 1), resolved once into canonical units.

Canonical units: time in ms, rate in Hz, voltage in mV; dimensionless numbers as they are.
A quantity is a bare number (already canonical) or a string ``"<number> <unit>"``.
"""

from __future__ import annotations

import math
import re

TIME, RATE, VOLTAGE, ONE = "time", "rate", "voltage", "1"

UNITS: dict[str, dict[str, float]] = {
    TIME: {"us": 1e-3, "ms": 1.0, "s": 1e3, "min": 60e3, "h": 3600e3},
    RATE: {"Hz": 1.0, "kHz": 1e3, "/s": 1.0, "/min": 1.0 / 60.0, "/h": 1.0 / 3600.0},
    VOLTAGE: {"mV": 1.0, "V": 1e3},
    ONE: {},
}
CANONICAL = {TIME: "ms", RATE: "Hz", VOLTAGE: "mV", ONE: ""}
_DIM_OF_UNIT = {u: d for d, table in UNITS.items() for u in table}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)\s*$")


class UnitError(ValueError):
    pass


_PARSED: dict = {}  # (text, dim) -> value: a sweep validates the same texts once per condition


def parse_quantity(value, dim: str) -> float:
    """Return ``value`` in the canonical unit of ``dim``; raise UnitError with a reason."""
    if type(value) is str:
        x = _PARSED.get((value, dim))
        if x is None:
            x = _parse(value, dim)
            if len(_PARSED) < 4096:
                _PARSED[(value, dim)] = x
        return x
    return _parse(value, dim)


def _parse(value, dim: str) -> float:
    if isinstance(value, bool) or value is None:
        raise UnitError(f"expected a number{_hint(dim)}, got {value!r}")
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str):
        m = _QUANTITY.match(value)
        if not m:
            raise UnitError(f"cannot read {value!r} as a number{_hint(dim)}")
        x, unit = float(m.group(1)), m.group(2)
        if unit:
            if unit not in _DIM_OF_UNIT:
                raise UnitError(f"unknown unit {unit!r} in {value!r}{_hint(dim)}")
            udim = _DIM_OF_UNIT[unit]
            if udim != dim:
                want = "no unit" if dim == ONE else f"a {dim} unit ({', '.join(UNITS[dim])})"
                raise UnitError(f"{value!r} is a {udim}, expected {want}")
            x *= UNITS[dim][unit]
    else:
        raise UnitError(f"expected a number{_hint(dim)}, got {type(value).__name__}")
    if not math.isfinite(x):
        raise UnitError(f"{value!r} is not a finite number")
    return x


def _hint(dim: str) -> str:
    if dim == ONE:
        return ""
    return f" with a {dim} unit ({', '.join(UNITS[dim])}; bare number = {CANONICAL[dim]})"


def format_quantity(x: float, dim: str) -> str:
    unit = CANONICAL[dim]
    return f"{x:g} {unit}" if unit else f"{x:g}"

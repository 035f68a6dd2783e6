"""Display strings for declared fields: every value in a report is formatted by its field's ``fmt``.

Formats (``bench.contract.FORMATS``): ``fixed1/2/3`` decimals; ``percent`` a fraction shown x100 with 2
decimals (the column title carries the ``%``); ``count`` an SI prefix (``1.23 M``); ``millions`` x1e-6 with
3 decimals; ``mj`` millijoules and ``joules`` joules, both shown in the unit that keeps 3 significant digits
readable (pJ .. J, the unit in the cell); ``sig`` 4 significant digits without exponents; ``int`` a whole
number; ``text`` as recorded. A value that is absent or not a finite number shows ``n/a``, never 0.
"""

from __future__ import annotations

import math
import re
from typing import Any

from bench.contract import NA, Field, energy_text

_NUMBER = re.compile(r"^[-+]?\d[\d.,]*(e[-+]?\d+)?( ?[kMGTµnpm]?J?)?( ⚠)?$|^n/a$|^-$")
JOULES_PER = {"mj": 1e-3, "joules": 1.0}  # energy formats: the recorded unit in joules


def number(v: Any) -> float | None:
    """A finite number as float, else None (booleans, strings, None, NaN are not numbers)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def si(x: float | None, digits: int = 3) -> str:
    """1234567 -> '1.23 M' (counts: k, M, G, T, P, E). Rounded to ``digits`` before the prefix is chosen, so a
    value that rounds up to the next prefix reads '1 k' or '1 M', never '1e+03'; from 1000 E on (or NaN, inf)
    the plain exponent form, '1.23e+21'."""
    if x is None:
        return NA
    x = float(f"{x:.{digits}g}")
    if not abs(x) < 1e21:
        return f"{x:.{digits}g}"
    for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.{digits}g} {prefix}"
    return f"{x:.{digits}g}"


def fixed(x: float | None, decimals: int = 2) -> str:
    return NA if x is None else f"{x:.{decimals}f}"


def sig(x: float | None, digits: int = 4) -> str:
    """Significant digits without exponents: 512.0 -> '512', 0.01234 -> '0.01234', 12500.0 -> '12500'."""
    if x is None:
        return NA
    return f"{x:.0f}" if abs(x) >= 10 ** (digits - 1) else f"{x:.{digits}g}"


def joules(field: Field, value: Any) -> float | None:
    """An energy field's value in joules (``mj`` or ``joules`` format); None for other fields or no value."""
    v = number(value)
    return None if v is None or field.fmt not in JOULES_PER else v * JOULES_PER[field.fmt]


def format_value(field: Field, value: Any) -> str:
    """``value`` of ``field`` as the report shows it (see the module docstring)."""
    if value is None:
        return NA
    if field.fmt == "text" or isinstance(value, (str, bool)):
        return str(value)
    v = number(value)
    if v is None:
        return NA
    if field.fmt in JOULES_PER:
        return energy_text(joules(field, v))
    if field.fmt.startswith("fixed"):
        return fixed(v, int(field.fmt[-1]))
    if field.fmt == "percent":
        return fixed(100 * v)
    if field.fmt == "count":
        return si(v)
    if field.fmt == "millions":
        return fixed(v / 1e6, 3)
    if field.fmt == "int":
        return str(int(v)) if v.is_integer() else sig(v)
    return sig(v)


def numeric_column(values: list[str]) -> bool:
    """Display strings of numbers (with an SI prefix or energy unit, a flag, n/a or -): a right-aligned column."""
    return any(v not in (NA, "-") for v in values) and all(_NUMBER.match(v) for v in values)

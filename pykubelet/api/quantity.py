"""Kubernetes resource quantities (``500m``, ``1.5Gi``, ``2e3``), parsed exactly as rationals.

The grammar is apimachinery's ``resource.Quantity``: a signed decimal number followed by a binary
suffix (Ki Mi Gi Ti Pi Ei), a decimal SI suffix (n u m "" k M G T P E) or a decimal exponent
(``e3``/``E-2``). Values are kept as ``fractions.Fraction`` so ``0.1`` is one tenth, never a float.
``milli_value``/``value`` round up as upstream's ``MilliValue``/``Value`` do.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from pykubelet.core.errors import InvalidInput

__all__ = ["Quantity", "parse_quantity"]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_NUMBER = re.compile(r"([+-]?)(\d+\.?\d*|\.\d+)(.*)")  # fullmatch: no trailing newline
_EXPONENT = re.compile(r"[eE]([+-]?\d+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Quantity:
    """An exact quantity; ``text`` is what the manifest said."""

    amount: Fraction
    text: str

    def value(self) -> int:
        """Whole units, rounded up (``Quantity.Value``)."""
        return math.ceil(self.amount)

    def milli_value(self) -> int:
        """Thousandths, rounded up (``Quantity.MilliValue``)."""
        return math.ceil(self.amount * 1000)


def parse_quantity(text: object, *, field: str = "") -> Quantity:
    """Parse a quantity string (or a bare JSON number); ``InvalidInput`` names ``field``."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise InvalidInput(f"quantity must be a string, got {type(text).__name__}", field=field)
    raw = str(text).strip() if not isinstance(text, str) else text
    m = _NUMBER.fullmatch(raw)
    if not m:
        raise InvalidInput(f"quantities must match the regular expression ({raw!r})", field=field)
    sign, digits, suffix = m.groups()
    number = Fraction(digits)
    if sign == "-":
        number = -number
    if suffix in _BINARY:
        scale: Fraction = Fraction(_BINARY[suffix])
    elif suffix in _DECIMAL:
        scale = _DECIMAL[suffix]
    elif em := _EXPONENT.fullmatch(suffix):
        scale = Fraction(10) ** int(em.group(1))
    else:
        raise InvalidInput(f"unable to parse quantity's suffix ({raw!r})", field=field)
    return Quantity(amount=number * scale, text=raw)

"""Kubernetes resource quantities (``500m``, ``1.5Gi``, ``2e3``), parsed exactly as rationals.

The grammar is apimachinery's ``resource.Quantity``: a signed decimal number followed by a binary
suffix (Ki Mi Gi Ti Pi Ei), a decimal SI suffix (n u m "" k M G T P E) or a decimal exponent
(``e3``/``E-2``). Values are kept as ``fractions.Fraction`` so ``0.1`` is one tenth, never a float.
``milli_value``/``value`` round up as upstream's ``MilliValue``/``Value`` do;
``canonical_quantity`` writes a quantity back as upstream's ``Quantity.String()`` does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from pykubelet.core.errors import InvalidInput

__all__ = ["Quantity", "canonical_quantity", "parse_quantity"]

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


_SI_SUFFIXES = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_NANO = 10**9


def canonical_quantity(text: object, *, field: str = "") -> str:
    """The canonical string of a quantity, as the Go API writes it back (``0.5`` → ``500m``,
    ``1.5Gi`` → ``1536Mi``, ``2048Ki`` → ``2Mi``, ``1e-10`` → ``1n``, a JSON number → a
    string). The format follows the suffix (binary, decimal SI, or exponent); a binary
    quantity under 1024 or not a whole number is written in decimal SI. Precision finer than
    nano is rounded up, as parsing does upstream."""
    q = parse_quantity(text, field=field)
    parsed = _NUMBER.match(q.text)
    assert parsed is not None  # parse_quantity accepted it
    suffix = parsed.group(3)
    nanos = math.ceil(q.amount * _NANO)
    if nanos == 0:
        return "0"
    if suffix in _BINARY and -1024 < q.amount < 1024:
        suffix = ""
    if suffix in _BINARY and nanos % _NANO == 0:
        number, power = nanos // _NANO, 0
        while number % 1024 == 0 and power < len(_BINARY_SUFFIXES) - 1:
            number, power = number // 1024, power + 1
        return f"{number}{_BINARY_SUFFIXES[power]}"
    mantissa, exponent = nanos, -9
    while mantissa % 10 == 0:
        mantissa, exponent = mantissa // 10, exponent + 1
    shift = exponent % 3  # down to a multiple of 3, as Go's AsCanonicalBytes
    mantissa, exponent = mantissa * 10**shift, exponent - shift
    if _EXPONENT.match(suffix) or exponent not in _SI_SUFFIXES:
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    return f"{mantissa}{_SI_SUFFIXES[exponent]}"

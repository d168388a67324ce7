"""JSON bytes as Go's encoding/json writes them (the kubelet's ``/pods``).

Compact, UTF-8 kept as is, but ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\u003c``,
``\\u003e``, ``\\u0026``, ``\\u2028``, ``\\u2029`` (Go's HTML-safe default). Those characters
can only occur inside JSON strings, so escaping the serialised text is exact.
"""

from __future__ import annotations

import json

__all__ = ["go_json"]

_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def go_json(obj: object) -> bytes:
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _ESCAPES:
        if char in text:  # rare: a scan is cheaper than a replace
            text = text.replace(char, escaped)
    return text.encode()

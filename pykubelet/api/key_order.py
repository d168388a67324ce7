"""Put a v1 object's keys in the order the Go kubelet writes them.

Go's encoding/json writes struct fields in declaration order and map keys sorted, so upstream's
``/pods`` has one key order whatever order the manifest used. Keys the table does not know
(fields newer than v1.20) keep their place after the known ones.
"""

from __future__ import annotations

from typing import Any

from pykubelet.api.field_order import FIELDS

__all__ = ["in_go_order"]


# type → field name → (declaration index, kind), built once from the table
_INDEX: dict[str, dict[str, tuple[int, str]]] = {
    name: {field: (i, kind) for i, (field, kind) in enumerate(fields)}
    for name, fields in FIELDS.items()
}
_UNKNOWN = (1 << 30, "")


def in_go_order(value: Any, type_name: str) -> Any:
    """``value`` (a JSON value of Go type ``type_name``, or a list of them) with its keys
    reordered; ``{}`` as the type sorts a map's keys. Returns new containers."""
    if isinstance(value, list):
        return [in_go_order(v, type_name) for v in value]
    if not isinstance(value, dict):
        return value
    if type_name == "{}":
        return {k: value[k] for k in sorted(value)}
    index = _INDEX.get(type_name)
    if index is None:
        return value
    # sorted() is stable: unknown keys keep their order, after the known ones
    keys = sorted(value, key=lambda k: index.get(k, _UNKNOWN)[0])
    out: dict[str, Any] = {}
    for name in keys:
        kind = index.get(name, _UNKNOWN)[1]
        out[name] = in_go_order(value[name], kind) if kind else value[name]
    return out

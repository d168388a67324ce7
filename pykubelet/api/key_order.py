"""Put a v1 object's keys in the order the Go kubelet writes them.

Go's encoding/json writes struct fields in declaration order and map keys sorted, so upstream's
``/pods`` has one key order whatever order the manifest used. Keys the table does not know
(fields newer than v1.20) keep their place after the known ones.
"""

from __future__ import annotations

from typing import Any

from pykubelet.api.field_order import FIELDS

__all__ = ["in_go_order"]


def in_go_order(value: Any, type_name: str) -> Any:
    """``value`` (a JSON value of Go type ``type_name``, or a list of them) with its keys
    reordered; ``{}`` as the type sorts a map's keys. Returns new containers."""
    if isinstance(value, list):
        return [in_go_order(v, type_name) for v in value]
    if not isinstance(value, dict):
        return value
    if type_name == "{}":
        return {k: value[k] for k in sorted(value)}
    fields = FIELDS.get(type_name)
    if fields is None:
        return value
    out: dict[str, Any] = {}
    for name, kind in fields:
        if name in value:
            out[name] = in_go_order(value[name], kind) if kind else value[name]
    for name, v in value.items():
        out.setdefault(name, v)
    return out

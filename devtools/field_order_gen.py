"""Regenerate ``pykubelet/api/field_order.py`` from the Kubernetes API's Go types.

Go's encoding/json writes struct fields in declaration order and map keys sorted; the kubelet's
``/pods`` therefore has a fixed key order. This reads the json tags of the types reachable from
``Pod`` in ``k8s.io/api/core/v1/types.go`` and ``k8s.io/apimachinery/.../meta/v1/types.go`` (the
source tree ``scripts/upstream-k8s/setup.sh`` unpacks) and prints the table:

    python -m devtools.field_order_gen SRC_TREE > pykubelet/api/field_order.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.S | re.M)
_TAG = re.compile(r'json:"([^",]*)(,[^"]*)?"')
_MAPS = {"ResourceList"}  # named map types


def _structs(sources: list[str]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for src in sources:
        for m in _STRUCT.finditer(src):
            fields: list[tuple[str, str]] = []
            for line in m.group(2).splitlines():
                line = line.strip()
                tag = _TAG.search(line)
                if line.startswith("//") or tag is None:
                    continue
                parts = line.split()
                if tag.group(1) == "" and "inline" in (tag.group(2) or ""):
                    fields.append(("", parts[0].lstrip("*")))
                elif tag.group(1) not in ("", "-"):
                    fields.append((tag.group(1), parts[1]))
            out.setdefault(m.group(1), fields)
    return out


def _kind(go_type: str, structs: dict[str, list[tuple[str, str]]]) -> str:
    """A struct name, ``{}`` for a map (keys sorted), or ``""`` for a scalar."""
    t = go_type.lstrip("*").removeprefix("[]").lstrip("*")
    if t.startswith("map[") or t in _MAPS:
        return "{}"
    t = t.rsplit(".", 1)[-1]
    return t if t in structs and t not in ("Time", "Quantity", "IntOrString") else ""


def table(
    structs: dict[str, list[tuple[str, str]]], roots: list[str]
) -> dict[str, list[tuple[str, str]]]:
    done: dict[str, list[tuple[str, str]]] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in done:
            continue
        flat: list[tuple[str, str]] = []
        pending = list(structs[name])
        while pending:
            json_name, go_type = pending.pop(0)
            if json_name == "":  # inline: the embedded struct's fields, in place
                pending[0:0] = structs[go_type.rsplit(".", 1)[-1]]
                continue
            kind = _kind(go_type, structs)
            flat.append((json_name, kind))
            if kind not in ("", "{}"):
                todo.append(kind)
        done[name] = flat
    return done


def main(argv: list[str]) -> int:
    root = Path(argv[1]) / "staging/src/k8s.io"
    sources = [
        (root / "api/core/v1/types.go").read_text(),
        (root / "apimachinery/pkg/apis/meta/v1/types.go").read_text(),
    ]
    t = table(_structs(sources), ["ObjectMeta", "PodSpec"])
    print('"""Key order of the v1 Pod as Go\'s encoding/json writes it (generated, do not edit).')
    print()
    print(
        'Struct fields in declaration order; ``{}`` marks a map (keys sorted), ``""`` a scalar or'
    )
    print("a list of scalars. From Kubernetes v1.20.2 by ``python -m devtools.field_order_gen``.")
    print('"""')
    print()
    print("FIELDS: dict[str, tuple[tuple[str, str], ...]] = {")
    for name in sorted(t):
        print(f"    {name!r}: (")
        for json_name, kind in t[name]:
            print(f"        ({json_name!r}, {kind!r}),")
        print("    ),")
    print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

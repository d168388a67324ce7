"""Container environment and ``$(VAR)`` expansion exactly as Kubernetes does it.

Expansion (upstream ``third_party/forked/golang/expansion``): ``$(NAME)`` becomes the value of
NAME when it is defined and stays ``$(NAME)`` verbatim otherwise; ``$$`` is an escaped ``$``;
any other ``$`` (including an unterminated ``$(``) is kept as written. Env values see only the
variables defined before them; command and args see the whole environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pykubelet.api import Container, Pod
from pykubelet.core.errors import InvalidInput

__all__ = ["ValueFromResolver", "build_env", "expand", "expand_command"]

# Resolves one ``valueFrom`` entry (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef);
# (pod, container, valueFrom object, field path for errors) -> value. The podspec layer adds it.
ValueFromResolver = Callable[[Pod, Container, Mapping[str, Any], str], str]


def expand(text: str, lookup: Mapping[str, str]) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:  # unterminated: "$(" kept, scanning goes on after it
                out.append("$(")
                i += 2
                continue
            name = text[i + 2 : end]
            out.append(lookup[name] if name in lookup else text[i : end + 1])
            i = end + 1
        else:
            out.append(ch)
            out.append(nxt)
            i += 2
    return "".join(out)


def build_env(
    pod: Pod,
    container: Container,
    *,
    value_from: ValueFromResolver | None = None,
    path: str = "",
) -> tuple[tuple[str, str], ...]:
    """The container's environment in declaration order (a later duplicate wins its slot).

    Raises ``InvalidInput`` naming the field for an entry that cannot be resolved (the worker
    reports it as ``CreateContainerConfigError``)."""
    env: dict[str, str] = {}
    for i, entry in enumerate(container.env):
        name = str(entry["name"])
        field = f"{path}.env[{i}]" if path else f"env[{i}]"
        if entry.get("valueFrom") is not None:
            if value_from is None:
                raise InvalidInput("valueFrom is not supported yet", field=f"{field}.valueFrom")
            env[name] = value_from(pod, container, entry["valueFrom"], f"{field}.valueFrom")
            continue
        raw = entry.get("value", "")
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            raise InvalidInput(
                f"expected a string, got {type(raw).__name__}", field=f"{field}.value"
            )
        env[name] = expand(raw, env)
    return tuple(env.items())


def expand_command(args: Sequence[str], env: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    lookup = dict(env)
    return tuple(expand(a, lookup) for a in args)

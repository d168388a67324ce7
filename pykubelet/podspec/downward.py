"""The downward API: pod facts as environment variables and as files, resolved as upstream does.

``resolve_value_from`` is the pod workers' ``ValueFromResolver`` (``fieldRef``,
``resourceFieldRef``); ``container_env`` resolves a whole ``env`` the same way (``$(VAR)``
expansion by ``pods.env.expand``); references a standalone node cannot
resolve (ConfigMaps, Secrets) raise ``ContainerConfigError``. ``downward_files`` renders the items
of a ``downwardAPI`` volume or projection to bytes. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from pykubelet.api import Container, Pod
from pykubelet.api.quantity import Quantity, parse_quantity
from pykubelet.core.errors import InvalidInput
from pykubelet.pods.env import expand
from pykubelet.pods.spec_errors import ContainerConfigError

__all__ = [
    "DownwardFile",
    "NodeAllocatable",
    "PodFacts",
    "container_env",
    "downward_files",
    "check_env_from",
    "field_value",
    "go_quote",
    "resolve_value_from",
    "resource_value",
]

_STANDALONE = "a standalone node has no API server to resolve it; use value or fieldRef"


@dataclass(frozen=True, slots=True, kw_only=True)
class PodFacts:
    """What the downward API exposes about one pod at the moment of resolution."""

    name: str
    namespace: str
    uid: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    node_name: str = ""
    service_account_name: str = ""
    host_ip: str = ""
    pod_ip: str = ""
    pod_ips: tuple[str, ...] = ()

    @classmethod
    def of(cls, pod: Pod, *, node_name: str, host_ip: str, pod_ips: Sequence[str]) -> PodFacts:
        return cls(
            name=pod.meta.name,
            namespace=pod.meta.namespace,
            uid=pod.meta.uid,
            labels=dict(pod.meta.labels),
            annotations=dict(pod.meta.annotations),
            node_name=pod.spec.node_name or node_name,
            service_account_name=pod.spec.service_account_name,
            host_ip=host_ip,
            pod_ip=pod_ips[0] if pod_ips else "",
            pod_ips=tuple(pod_ips),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeAllocatable:
    """Stands in for unset limits, as the kubelet fills them from the node's allocatable."""

    cpu_milli: int
    memory_bytes: int
    ephemeral_storage_bytes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DownwardFile:
    path: str  # relative to the volume root
    content: bytes
    mode: int | None = None  # None: the volume's defaultMode


def go_quote(s: str) -> str:
    """Go's ``%q`` for the strings labels and annotations hold."""
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _format_map(m: Mapping[str, str]) -> str:
    return "\n".join(f"{k}={go_quote(v)}" for k, v in sorted(m.items()))


def _subscript(path: str, prefix: str) -> str | None:
    """``metadata.labels['app']`` → ``app``; None when ``path`` is not of that shape."""
    if path.startswith(prefix + "['") and path.endswith("']"):
        return path[len(prefix) + 2 : -2]
    return None


def field_value(path: str, facts: PodFacts, *, for_volume: bool = False, where: str = "") -> str:
    """The value of a ``fieldRef.fieldPath``; volumes allow only ``metadata.*`` (and whole maps)."""
    if (key := _subscript(path, "metadata.labels")) is not None:
        return facts.labels.get(key, "")
    if (key := _subscript(path, "metadata.annotations")) is not None:
        return facts.annotations.get(key, "")
    simple = {
        "metadata.name": facts.name,
        "metadata.namespace": facts.namespace,
        "metadata.uid": facts.uid,
    }
    if path in simple:
        return simple[path]
    if for_volume:
        if path == "metadata.labels":
            return _format_map(facts.labels)
        if path == "metadata.annotations":
            return _format_map(facts.annotations)
    else:
        env_only = {
            "spec.nodeName": facts.node_name,
            "spec.serviceAccountName": facts.service_account_name,
            "status.hostIP": facts.host_ip,
            "status.podIP": facts.pod_ip,
            "status.podIPs": ",".join(facts.pod_ips),
        }
        if path in env_only:
            return env_only[path]
    raise InvalidInput(f"unsupported fieldPath {path!r}", field=where)


_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def _container_quantity(container: Container, kind: str, name: str) -> Quantity | None:
    section = container.resources.get(kind) or {}
    if not isinstance(section, Mapping) or name not in section:
        return None
    return parse_quantity(section[name], field=f"resources.{kind}.{name}")


def resource_value(
    container: Container,
    resource: str,
    divisor: object,
    allocatable: NodeAllocatable,
    *,
    where: str = "",
) -> str:
    """A ``resourceFieldRef`` value: ceil(quantity / divisor); unset limits read allocatable;
    unset requests default to the limit (as API defaulting does) and otherwise to 0."""
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in _RESOURCES:
        raise InvalidInput(f"unsupported container resource {resource!r}", field=where)
    div = parse_quantity(divisor if divisor not in (None, "") else "1", field=f"{where}.divisor")
    if div.amount <= 0:
        raise InvalidInput("divisor must be positive", field=f"{where}.divisor")
    limit = _container_quantity(container, "limits", name)
    if kind == "limits":
        qty = limit
    else:
        qty = _container_quantity(container, "requests", name) or limit
    if qty is None:
        if kind == "requests":
            return "0"
        fallback = {
            "cpu": f"{allocatable.cpu_milli}m",
            "memory": str(allocatable.memory_bytes),
            "ephemeral-storage": str(allocatable.ephemeral_storage_bytes),
        }[name]
        qty = parse_quantity(fallback)
    if name == "cpu":
        return str(math.ceil(Fraction(qty.milli_value(), max(1, div.milli_value()))))
    return str(math.ceil(Fraction(qty.value(), max(1, div.value()))))


def resolve_value_from(
    container: Container,
    source: Mapping[str, Any],
    facts: PodFacts,
    allocatable: NodeAllocatable,
    *,
    name: str,
    at: str,
) -> str:
    """One ``valueFrom``; ``at`` names it in errors (``spec.containers[0].env[2].valueFrom``)."""
    if not isinstance(source, Mapping):
        raise ContainerConfigError("valueFrom must be an object", field=at)
    if "fieldRef" in source:
        ref = source["fieldRef"] or {}
        return field_value(str(ref.get("fieldPath", "")), facts, where=f"{at}.fieldRef.fieldPath")
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"] or {}
        return resource_value(
            container,
            str(ref.get("resource", "")),
            ref.get("divisor"),
            allocatable,
            where=f"{at}.resourceFieldRef",
        )
    if "configMapKeyRef" in source or "secretKeyRef" in source:
        kind = "configMapKeyRef" if "configMapKeyRef" in source else "secretKeyRef"
        ref = source[kind] or {}
        raise ContainerConfigError(
            f"{kind} {ref.get('name', '')!r} key {ref.get('key', '')!r} for {name}: " + _STANDALONE,
            field=f"{at}.{kind}",
        )
    raise ContainerConfigError("valueFrom names no known source", field=at)


def container_env(
    container: Container,
    facts: PodFacts,
    allocatable: NodeAllocatable,
    *,
    path: str = "",
) -> tuple[tuple[str, str], ...]:
    """Resolve ``env`` in order; later entries see earlier ones in ``$(VAR)`` references."""
    where = path or f"container {container.name!r}"
    resolved: dict[str, str] = {}
    for i, raw in enumerate(container.env):
        item: Mapping[str, Any] = raw
        name = str(item["name"])
        at = f"{where}.env[{i}]"
        source = item.get("valueFrom")
        if source is None:
            resolved[name] = expand(str(item.get("value") or ""), resolved)
            continue
        resolved[name] = resolve_value_from(
            container, source, facts, allocatable, name=name, at=f"{at}.valueFrom"
        )
    return tuple(resolved.items())


def check_env_from(container: Container, env_from: Sequence[Mapping[str, Any]]) -> None:
    """``envFrom`` only ever names ConfigMaps or Secrets: refuse it with the reason."""
    for i, item in enumerate(env_from):
        kind = "configMapRef" if "configMapRef" in item else "secretRef"
        raise ContainerConfigError(
            f"{kind} {(item.get(kind) or {}).get('name', '')!r}: " + _STANDALONE,
            field=f"container {container.name!r}.envFrom[{i}]",
        )


def downward_files(
    items: Sequence[Mapping[str, Any]],
    facts: PodFacts,
    containers: Sequence[Container],
    allocatable: NodeAllocatable,
    *,
    where: str,
) -> tuple[DownwardFile, ...]:
    """Render ``downwardAPI.items`` (volume or projection source)."""
    out: list[DownwardFile] = []
    for i, item in enumerate(items):
        at = f"{where}.items[{i}]"
        rel = item.get("path")
        if not isinstance(rel, str) or not rel:
            raise InvalidInput("Required value", field=f"{at}.path")
        if rel.startswith("/") or ".." in rel.split("/"):
            raise InvalidInput("must be a relative path without '..'", field=f"{at}.path")
        mode = item.get("mode")
        if mode is not None and (not isinstance(mode, int) or not 0 <= mode <= 0o777):
            raise InvalidInput("must be a number between 0 and 0777", field=f"{at}.mode")
        if "fieldRef" in item:
            path = str((item["fieldRef"] or {}).get("fieldPath", ""))
            text = field_value(path, facts, for_volume=True, where=f"{at}.fieldRef.fieldPath")
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"] or {}
            cname = ref.get("containerName", "")
            match = [c for c in containers if c.name == cname]
            if not match:
                raise InvalidInput(f"no container {cname!r}", field=f"{at}.resourceFieldRef")
            text = resource_value(
                match[0],
                str(ref.get("resource", "")),
                ref.get("divisor"),
                allocatable,
                where=f"{at}.resourceFieldRef",
            )
        else:
            raise InvalidInput("needs fieldRef or resourceFieldRef", field=at)
        out.append(DownwardFile(path=rel, content=text.encode(), mode=mode))
    return tuple(out)

"""Container ports: validation and defaulting as the API server applies them to a v1 Pod.

Upstream (``apis/core/validation``: ``validateContainerPorts``, ``validateHostNetwork``,
``AccumulateUniqueHostPorts``; ``apis/core/v1/defaults.go``): ``containerPort`` is required and
1..65535; ``hostPort``, when set, 1..65535; ``protocol`` defaults to ``TCP`` and is one of
``TCP``/``UDP``/``SCTP``; a port ``name`` is an IANA service name, unique in its container; with
``hostNetwork`` an unset ``hostPort`` defaults to ``containerPort`` and any other value is
refused; two containers of a pod may not claim the same ``protocol/hostIP/hostPort``. We also
require ``hostIP``, when set, to be an IP address (upstream defers that to the runtime, whose
port-mapping plugin then fails the sandbox).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pykubelet.core.errors import InvalidInput

__all__ = ["PROTOCOLS", "ContainerPort", "check_host_port_conflicts", "container_ports"]

PROTOCOLS = ("SCTP", "TCP", "UDP")
_PORT_RANGE = "must be between 1 and 65535, inclusive"
_SVC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")  # fullmatch only


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerPort:
    """One entry of ``containers[*].ports`` after defaulting."""

    container_port: int
    host_port: int = 0
    protocol: str = "TCP"
    host_ip: str = ""
    name: str = ""


def _int_field(entry: Mapping[str, Any], key: str, path: str) -> int:
    value = entry.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"expected integer, got {type(value).__name__}", field=f"{path}.{key}")
    return value


def _str_field(entry: Mapping[str, Any], key: str, path: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"expected string, got {type(value).__name__}", field=f"{path}.{key}")
    return value


def _check_port_name(name: str, path: str) -> None:
    problem = ""
    if len(name) > 15:
        problem = "must be no more than 15 characters"
    elif not _SVC_NAME.fullmatch(name):
        problem = (
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), "
            "and must not begin or end with a hyphen"
        )
    elif "--" in name:
        problem = "must not contain consecutive hyphens"
    elif not any(c.isalpha() for c in name):
        problem = "must contain at least one letter (a-z)"
    if problem:
        raise InvalidInput(f"Invalid value: {name!r}: {problem}", field=f"{path}.name")


def container_ports(
    raw_ports: Sequence[Any], path: str, *, host_network: bool = False
) -> tuple[ContainerPort, ...]:
    """Validate and default one container's ``ports`` (``path`` is the container's own path);
    ``InvalidInput`` names the field (``spec.containers[0].ports[1].hostPort``)."""
    out: list[ContainerPort] = []
    names: set[str] = set()
    for i, entry in enumerate(raw_ports):
        at = f"{path}.ports[{i}]"
        if not isinstance(entry, Mapping):
            raise InvalidInput(f"expected object, got {type(entry).__name__}", field=at)
        name = _str_field(entry, "name", at)
        if name:
            _check_port_name(name, at)
            if name in names:
                raise InvalidInput(f"Duplicate value: {name!r}", field=f"{at}.name")
            names.add(name)
        container_port = _int_field(entry, "containerPort", at)
        if container_port == 0:  # unset and 0 are the same to the API
            raise InvalidInput("Required value", field=f"{at}.containerPort")
        if not 0 < container_port <= 65535:
            raise InvalidInput(
                f"Invalid value: {container_port}: {_PORT_RANGE}", field=f"{at}.containerPort"
            )
        host_port = _int_field(entry, "hostPort", at)
        if host_port != 0 and not 0 < host_port <= 65535:
            raise InvalidInput(f"Invalid value: {host_port}: {_PORT_RANGE}", field=f"{at}.hostPort")
        if host_network:
            if host_port == 0:
                host_port = container_port  # the v1 default for host-network pods
            elif host_port != container_port:
                raise InvalidInput(
                    f"Invalid value: {container_port}: must match `hostPort` when "
                    "`hostNetwork` is true",
                    field=f"{at}.containerPort",
                )
        protocol = _str_field(entry, "protocol", at) or "TCP"
        if protocol not in PROTOCOLS:
            raise InvalidInput(
                f"Unsupported value: {protocol!r}: supported values: "
                + ", ".join(f'"{p}"' for p in PROTOCOLS),
                field=f"{at}.protocol",
            )
        host_ip = _str_field(entry, "hostIP", at)
        if host_ip:
            try:
                ipaddress.ip_address(host_ip)
            except ValueError:
                raise InvalidInput(
                    f"Invalid value: {host_ip!r}: must be a valid IP address", field=f"{at}.hostIP"
                ) from None
        out.append(
            ContainerPort(
                container_port=container_port,
                host_port=host_port,
                protocol=protocol,
                host_ip=host_ip,
                name=name,
            )
        )
    return tuple(out)


def check_host_port_conflicts(
    containers: Sequence[tuple[str, Sequence[ContainerPort]]],
) -> None:
    """Two ports of one pod (``(container path, ports)`` pairs) may not claim the same
    ``protocol/hostIP/hostPort``; the second is named as a duplicate, as upstream does."""
    seen: set[str] = set()
    for path, ports in containers:
        for i, p in enumerate(ports):
            if p.host_port == 0:
                continue
            key = f"{p.protocol}/{p.host_ip}/{p.host_port}"
            if key in seen:
                raise InvalidInput(f"Duplicate value: {key!r}", field=f"{path}.ports[{i}].hostPort")
            seen.add(key)

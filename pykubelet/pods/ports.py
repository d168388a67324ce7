"""Host ports: the sandbox's port mappings and the admission check on host-port clashes.

Upstream: kuberuntime's ``generatePodSandboxConfig`` puts every port of every regular container
into the sandbox config (``kubecontainer.MakePortMappings``: defaults applied, a port whose name,
or for an unnamed port whose family/protocol/hostIP/containerPort/hostPort, repeats in its
container is skipped). The runtime maps those with ``hostPort > 0``. Admission (the kubelet's
GeneralPredicates, scheduler plugin ``NodePorts``) refuses a pod when one of its
``(hostIP, hostPort, protocol)`` is taken by an active pod: an empty hostIP means ``0.0.0.0``,
which clashes with every address. The rejected pod fails with reason ``NodePorts`` and message
``Pod Predicate NodePorts failed``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from pykubelet.api import Pod
from pykubelet.api.ports import ContainerPort, container_ports
from pykubelet.core.errors import InvalidInput
from pykubelet.runtime.types import PortMapping

__all__ = [
    "NODE_PORTS_MESSAGE",
    "NODE_PORTS_REASON",
    "HostPort",
    "host_port_conflict",
    "host_ports",
    "port_mappings",
]

log = logging.getLogger(__name__)

NODE_PORTS_REASON = "NodePorts"
NODE_PORTS_MESSAGE = "Predicate NodePorts failed"
_ANY_IP = "0.0.0.0"

HostPort = tuple[str, str, int]  # (hostIP, protocol, hostPort)


def _ports(pod: Pod) -> list[tuple[str, tuple[ContainerPort, ...]]]:
    """Each regular container's defaulted ports. The pod was validated when it was parsed;
    a ``Pod`` built without ``from_dict`` may still hold bad ports: those are skipped."""
    out = []
    for i, c in enumerate(pod.spec.containers):
        path = f"spec.containers[{i}]"
        try:
            out.append((c.name, container_ports(c.ports, path, host_network=pod.spec.host_network)))
        except InvalidInput as e:
            log.warning("pod %s: ports of %s ignored: %s", pod.full_name, c.name, e)
    return out


def port_mappings(pod: Pod) -> tuple[PortMapping, ...]:
    """The sandbox's port mappings, in container and port order, as upstream builds them."""
    out: list[PortMapping] = []
    for container, ports in _ports(pod):
        names: set[str] = set()
        for p in ports:
            family = "any"
            if p.host_ip:
                family = "v6" if ipaddress.ip_address(p.host_ip).version == 6 else "v4"
            key = p.name or (f"{family}-{p.protocol}-{p.host_ip}:{p.container_port}:{p.host_port}")
            if key in names:
                log.warning(
                    "pod %s container %s: Port name conflicted, %r is defined more than once",
                    pod.full_name,
                    container,
                    key,
                )
                continue
            names.add(key)
            out.append(
                PortMapping(
                    container_port=p.container_port,
                    host_port=p.host_port,
                    protocol=p.protocol,
                    host_ip=p.host_ip,
                )
            )
    return tuple(out)


def host_ports(pod: Pod) -> frozenset[HostPort]:
    """``(hostIP, protocol, hostPort)`` the pod claims on the node; hostIP ``0.0.0.0`` when
    unset, as the scheduler's ``HostPortInfo`` sanitises it."""
    return frozenset(
        (p.host_ip or _ANY_IP, p.protocol or "TCP", p.host_port)
        for _, ports in _ports(pod)
        for p in ports
        if p.host_port > 0
    )


def _clash(a: HostPort, b: HostPort) -> bool:
    if a[1:] != b[1:]:
        return False
    return a[0] == b[0] or _ANY_IP in (a[0], b[0])


def host_port_conflict(pod: Pod, others: Iterable[Pod]) -> HostPort | None:
    """The first of ``pod``'s host ports another (active) pod already uses, or None."""
    wanted = host_ports(pod)
    if not wanted:
        return None
    used = {hp for other in others for hp in host_ports(other)}
    for want in sorted(wanted):
        for have in used:
            if _clash(want, have):
                return want
    return None

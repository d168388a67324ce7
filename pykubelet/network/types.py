"""Values and errors of pod networking. The seam itself is ``runtime.network.PodNetwork``
(the process runtime calls it); ``CniNetwork`` implements it with real CNI plugins and
``BridgeNetwork`` with rtnetlink from the agent process. ``AgentNetwork`` is what the agent
needs of either."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from pykubelet.core.errors import InvalidInput, PykubeletError, Unavailable
from pykubelet.runtime.pod_network import PodNetwork
from pykubelet.runtime.types import PortMapping, SandboxConfig

__all__ = [
    "AddressPoolExhausted",
    "AgentNetwork",
    "CniConfigError",
    "CniPluginError",
    "NetlinkError",
    "NetworkError",
    "PodNetworkStatus",
    "SandboxNetworkRef",
]


class NetworkError(PykubeletError):
    """Base of pod-network errors.

    NetworkError
    ├── CniConfigError        (InvalidInput) a network config file or field is wrong
    ├── CniPluginError        (Unavailable)  a plugin failed; ``code``/``details`` from its JSON
    ├── NetlinkError          (Unavailable)  the kernel refused an rtnetlink request;
    │                                        ``operation`` and ``errno`` say which and why
    └── AddressPoolExhausted  (Unavailable)  the built-in network's subnet has no free address
    """


class NetlinkError(NetworkError, Unavailable):
    def __init__(self, operation: str, errno: int = 0, detail: str = "") -> None:
        why = os.strerror(errno) if errno else "failed"
        if detail:
            why = f"{why} ({detail})"
        super().__init__(f"{operation}: {why}")
        self.operation = operation
        self.errno = errno


class AddressPoolExhausted(NetworkError, Unavailable):
    pass


class AgentNetwork(PodNetwork, Protocol):
    """What the agent needs of a pod network: the runtime's ``PodNetwork`` plus the start-up
    sweep. ``CniNetwork`` and ``BridgeNetwork`` both provide it."""

    async def cleanup_leftovers(self, live_sandbox_ids: Collection[str]) -> list[str]:
        """Release what sandboxes not in ``live_sandbox_ids`` still hold (an earlier agent's
        leftovers); return their ids."""
        ...


class CniConfigError(NetworkError, InvalidInput):
    pass


class CniPluginError(NetworkError, Unavailable):
    def __init__(self, message: str, *, code: int = 0, details: str = "", plugin: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.details = details
        self.plugin = plugin


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxNetworkRef:
    """Who the network is for: CNI_CONTAINERID is the sandbox id; the rest goes in CNI_ARGS."""

    sandbox_id: str
    netns_path: str
    namespace: str
    name: str
    uid: str
    port_mappings: tuple[PortMapping, ...] = ()  # all of the pod's; hostPort > 0 are realised

    @classmethod
    def of(cls, sandbox_id: str, netns_path: str, config: SandboxConfig) -> SandboxNetworkRef:
        """The reference ``PodNetwork.setup`` gets its arguments for."""
        return cls(
            sandbox_id=sandbox_id,
            netns_path=netns_path,
            namespace=config.namespace,
            name=config.name,
            uid=config.uid,
            port_mappings=config.port_mappings,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PodNetworkStatus:
    ips: tuple[str, ...]  # addresses without prefix length, IPv4 first
    interface: str = "eth0"
    gateway: str = ""

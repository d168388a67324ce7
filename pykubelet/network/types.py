"""Values and errors of pod networking. The seam itself is ``runtime.network.PodNetwork``
(the process runtime calls it); ``CniNetwork`` implements it with real CNI plugins."""

from __future__ import annotations

from dataclasses import dataclass

from pykubelet.errors import InvalidInput, PykubeletError, Unavailable
from pykubelet.runtime.types import PortMapping

__all__ = [
    "CniConfigError",
    "CniPluginError",
    "NetworkError",
    "PodNetworkStatus",
    "SandboxNetworkRef",
]


class NetworkError(PykubeletError):
    """Base of pod-network errors.

    NetworkError
    ├── CniConfigError   (InvalidInput) a network config file or field is wrong
    └── CniPluginError   (Unavailable)  a plugin failed; ``code``/``details`` from its error JSON
    """


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


@dataclass(frozen=True, slots=True, kw_only=True)
class PodNetworkStatus:
    ips: tuple[str, ...]  # addresses without prefix length, IPv4 first
    interface: str = "eth0"
    gateway: str = ""

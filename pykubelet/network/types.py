"""The pod-network seam the runtime calls, and its values.

``PodNetwork`` is what a sandbox needs from networking: attach a namespace (CNI ADD), detach it
(CNI DEL, idempotent), and forget whatever an earlier run of the agent left behind. The process
runtime holds one; ``CniNetwork`` implements it with real CNI plugins.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from pykubelet.errors import InvalidInput, PykubeletError, Unavailable

__all__ = [
    "CniConfigError",
    "CniPluginError",
    "NetworkError",
    "PodNetwork",
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


@dataclass(frozen=True, slots=True, kw_only=True)
class PodNetworkStatus:
    ips: tuple[str, ...]  # addresses without prefix length, IPv4 first
    interface: str = "eth0"
    gateway: str = ""


class PodNetwork(Protocol):
    async def setup(self, ref: SandboxNetworkRef) -> PodNetworkStatus:
        """Attach the sandbox's namespace; raises ``CniPluginError``. Undoes itself on failure."""
        ...

    async def teardown(self, sandbox_id: str) -> None:
        """Release addresses and interfaces. Idempotent; unknown ids are fine."""
        ...

    async def cleanup_leftovers(self, live_sandbox_ids: Collection[str]) -> list[str]:
        """Tear down every attachment recorded by an earlier run whose sandbox is gone;
        return the sandbox ids released. Called once at start-up."""
        ...

"""The pod network hook: how a runtime asks for addresses in a sandbox's network namespace.

The process runtime calls ``setup`` once after creating a non-host-network sandbox and
``teardown`` once when stopping it; a CNI implementation lives outside the runtime.
"""

from __future__ import annotations

from typing import Protocol

from pykubelet.runtime.types import SandboxConfig

__all__ = ["PodNetwork"]


class PodNetwork(Protocol):
    async def setup(self, sandbox_id: str, netns_path: str, config: SandboxConfig) -> list[str]:
        """Attach the namespace to the pod network; return the pod's IPs (first is primary)."""
        ...

    async def teardown(self, sandbox_id: str, netns_path: str) -> None:
        """Release what ``setup`` took. Idempotent; ``netns_path`` may no longer exist."""
        ...

"""The relister's latest view of every container, shared with the workers (upstream podCache).

The relister lists the runtime once a second; a worker woken by it reads its sandbox's
containers from here instead of asking the runtime again. A worker that has just acted asks
the runtime directly, since the cache may predate its action.
"""

from __future__ import annotations

from collections.abc import Sequence

from pykubelet.runtime.types import ContainerStatus

__all__ = ["ContainerCache"]


class ContainerCache:
    def __init__(self) -> None:
        self._by_sandbox: dict[str, list[ContainerStatus]] = {}
        self.updated_at = float("-inf")  # Clock.monotonic() of the list the cache holds

    def update(self, containers: Sequence[ContainerStatus], listed_at: float) -> None:
        by_sandbox: dict[str, list[ContainerStatus]] = {}
        for c in containers:
            by_sandbox.setdefault(c.sandbox_id, []).append(c)
        self._by_sandbox = by_sandbox
        self.updated_at = listed_at

    def containers(self, sandbox_id: str, *, newer_than: float) -> list[ContainerStatus] | None:
        """The sandbox's containers if the cache was listed after ``newer_than``, else None."""
        if self.updated_at <= newer_than:
            return None
        return list(self._by_sandbox.get(sandbox_id, ()))

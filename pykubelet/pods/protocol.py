"""What the rest of the agent may ask of the pod layer: read-only snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pykubelet.api import Pod

__all__ = ["PodLister"]


class PodLister(Protocol):
    """Desired pods with their latest status. Never blocks; snapshots are immutable."""

    def list_pods(self) -> Sequence[Pod]:
        """Every pod the node manages, in a stable order (namespace, name)."""
        ...

    def get_pod(self, namespace: str, name: str) -> Pod | None: ...

    def sync_loop_healthy(self) -> bool:
        """False when the sync loop has not run for longer than upstream tolerates."""
        ...

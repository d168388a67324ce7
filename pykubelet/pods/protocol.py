"""What the rest of the agent may ask of the pod layer: read-only snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pykubelet.api import Pod

__all__ = ["PodLister", "VersionedPodLister"]


class PodLister(Protocol):
    """Desired pods with their latest status. Never blocks; snapshots are immutable."""

    def list_pods(self) -> Sequence[Pod]:
        """Every pod the node manages, in a stable order (namespace, name)."""
        ...

    def get_pod(self, namespace: str, name: str) -> Pod | None: ...

    def sync_loop_healthy(self) -> bool:
        """False when the sync loop has not run for longer than upstream tolerates."""
        ...


class VersionedPodLister(PodLister, Protocol):
    """A ``PodLister`` that can say cheaply whether anything changed (optional).

    The HTTP layer re-encodes ``/pods`` only when ``generation()`` differs from the last value
    it saw, so a request costs no ``list_pods()`` call at all while nothing changes."""

    def generation(self) -> int:
        """A number that changes whenever ``list_pods()`` would return different content
        (a pod added, removed or updated, or any status change). Never blocks."""
        ...

"""Events the pod layer reports (Pulled, Created, Started, Killing, BackOff, Unhealthy...).

The worker and the pod-spec features say what happened to a pod; where it goes is the
composition root's choice: nowhere in standalone mode, the API server's events in node mode
(``pykubelet.node``), which also owns the rate limit. ``event`` must not block: a sink queues.
"""

from __future__ import annotations

from typing import Protocol

from pykubelet.api import Pod

__all__ = ["NORMAL", "WARNING", "EventSink", "NoEvents"]

NORMAL = "Normal"
WARNING = "Warning"


class EventSink(Protocol):
    def event(
        self, pod: Pod, type_: str, reason: str, message: str, *, field_path: str = ""
    ) -> None:
        """Record one event about ``pod`` (``field_path``: e.g. ``spec.containers{web}``)."""
        ...


class NoEvents:
    """Standalone mode: events are only logged by whoever emits them."""

    def event(
        self, pod: Pod, type_: str, reason: str, message: str, *, field_path: str = ""
    ) -> None:
        return None

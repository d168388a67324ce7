"""What the streaming handlers need from the rest of the agent, as one frozen bundle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pykubelet.pods.protocol import PodLister
from pykubelet.runtime.protocol import Runtime, StreamingRuntime

__all__ = ["RecorderFactory", "SessionRecorder", "StreamBackend"]


class SessionRecorder(Protocol):
    """Records one interactive session (the security helper's asciicast writer)."""

    def output(self, data: bytes) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    def close(self) -> None: ...


RecorderFactory = Callable[[str, int, int], SessionRecorder]
"""``factory(audit_id, width, height)``; called once per exec/attach session."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamBackend:
    pods: PodLister
    runtime: Runtime  # exec_sync for /run, sandboxes for port-forward
    streaming: StreamingRuntime
    idle_timeout_s: float = 4 * 3600.0  # streamingConnectionIdleTimeout
    creation_timeout_s: float = 30.0
    recorder_factory: RecorderFactory | None = None

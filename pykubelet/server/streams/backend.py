"""What the streaming handlers need from the rest of the agent, as one frozen bundle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from pykubelet.pods.protocol import PodLister
from pykubelet.runtime.protocol import Runtime, StreamingRuntime
from pykubelet.security.recording import RecorderFactory as RecorderOpener
from pykubelet.security.recording import SessionRecorder

__all__ = [
    "AuditIdOf",
    "RecorderFactory",
    "RecorderOpener",
    "SessionRecorder",
    "StreamBackend",
    "open_recorder",
]


RecorderFactory = RecorderOpener | Callable[[str, int, int], SessionRecorder]
"""Either an object with ``open(audit_id, *, width, height, command)`` or a plain
``factory(audit_id, width, height)``; called once per exec/attach session."""

AuditIdOf = Callable[[web.Request], str | None]
"""Reads the request's audit ID as the front door recorded it (None: not known)."""


def open_recorder(
    factory: RecorderFactory, audit_id: str, command: Sequence[str]
) -> SessionRecorder:
    if hasattr(factory, "open"):
        return factory.open(audit_id, width=80, height=24, command=command)
    assert callable(factory)
    return factory(audit_id, 80, 24)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamBackend:
    pods: PodLister
    runtime: Runtime  # exec_sync for /run, sandboxes for port-forward
    streaming: StreamingRuntime
    idle_timeout_s: float = 4 * 3600.0  # streamingConnectionIdleTimeout
    creation_timeout_s: float = 30.0
    recorder_factory: RecorderFactory | None = None
    audit_id_of: AuditIdOf | None = None

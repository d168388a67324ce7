"""The aiohttp glue from HTTP upgrades to the sans-IO streaming cores."""

from pykubelet.server.streams.backend import (
    AuditIdOf,
    RecorderFactory,
    RecorderOpener,
    SessionRecorder,
    StreamBackend,
)
from pykubelet.server.streams.handlers import stream_routes

__all__ = [
    "AuditIdOf",
    "RecorderFactory",
    "RecorderOpener",
    "SessionRecorder",
    "StreamBackend",
    "stream_routes",
]

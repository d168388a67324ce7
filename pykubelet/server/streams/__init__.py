"""The aiohttp glue from HTTP upgrades to the sans-IO streaming cores."""

from pykubelet.server.streams.backend import RecorderFactory, SessionRecorder, StreamBackend
from pykubelet.server.streams.handlers import stream_routes

__all__ = ["RecorderFactory", "SessionRecorder", "StreamBackend", "stream_routes"]

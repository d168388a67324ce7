"""``/logs/``: a file server over the system log directory (upstream: http.FileServer)."""

from __future__ import annotations

from aiohttp import web

__all__ = ["system_log_routes"]


def system_log_routes(directory: str) -> list[web.AbstractRouteDef]:
    return []

"""``/debug/flags/v``: set the log verbosity at run time (reference §1.2).

PUT with an integer body → 200 ``successfully set klog.logging.verbosity to N``; a bad value is
400; any other method 406 ``unsupported http method``. Verbosity maps onto Python logging:
0 to 3 → INFO, 4 and above → DEBUG on the ``pykubelet`` logger.
"""

from __future__ import annotations

import logging

from aiohttp import web

from pykubelet.server.errors import plain

__all__ = ["debug_routes"]


def _plain_text(status: int, text: str) -> web.Response:
    """component-base's ``writePlainText``: ``text/plain`` without a charset, ``nosniff``, the
    text plus a newline. Every answer of this endpoint is written this way."""
    resp = plain(status, text + "\n", content_type="text/plain")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


async def _flags_v(request: web.Request) -> web.StreamResponse:
    if request.method != "PUT":
        return _plain_text(406, "unsupported http method")
    raw = (await request.read()).decode("utf-8", "replace").strip()
    try:
        level = int(raw, 10)
    except ValueError:
        return _plain_text(400, f'invalid value "{raw}" for verbosity: must be an integer')
    if level < 0:
        return _plain_text(400, f'invalid value "{raw}" for verbosity: must be >= 0')
    logging.getLogger("pykubelet").setLevel(logging.DEBUG if level >= 4 else logging.INFO)
    return _plain_text(200, f"successfully set klog.logging.verbosity to {level}")


def debug_routes() -> list[web.AbstractRouteDef]:
    return [web.route("*", "/debug/flags/v", _flags_v)]

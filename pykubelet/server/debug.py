"""``/debug/flags/v``: set the log verbosity at run time (reference §1.2).

PUT with an integer body → 200 ``successfully set klog.logging.verbosity to N``; a bad value is
400; any other method 406 ``unsupported http method``. Verbosity maps onto Python logging:
0 to 3 → INFO, 4 and above → DEBUG on the ``pykubelet`` logger.
"""

from __future__ import annotations

import logging

from aiohttp import web

from pykubelet.server.errors import go_error

__all__ = ["debug_routes"]


async def _flags_v(request: web.Request) -> web.StreamResponse:
    if request.method != "PUT":
        return go_error(406, "unsupported http method")
    raw = (await request.read()).decode("utf-8", "replace").strip()
    try:
        level = int(raw, 10)
    except ValueError:
        return go_error(400, f'invalid value "{raw}" for verbosity: must be an integer')
    if level < 0:
        return go_error(400, f'invalid value "{raw}" for verbosity: must be >= 0')
    logging.getLogger("pykubelet").setLevel(logging.DEBUG if level >= 4 else logging.INFO)
    return web.Response(
        text=f"successfully set klog.logging.verbosity to {level}\n",
        content_type="text/plain",
    )


def debug_routes() -> list[web.AbstractRouteDef]:
    return [web.route("*", "/debug/flags/v", _flags_v)]

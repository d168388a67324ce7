"""``/debug/flags/v``: set the log verbosity at run time (reference §1.2).

PUT with an integer body → 200 ``successfully set klog.logging.verbosity to N``; a bad value is
400 with klog's message; any other method 406 ``unsupported http method``. Verbosity maps onto
Python logging: up to 3 → INFO, 4 and above → DEBUG on the ``pykubelet`` logger.
"""

from __future__ import annotations

import json
import logging
import re

from aiohttp import web

from pykubelet.server.errors import plain

__all__ = ["debug_routes"]

_GO_INT = re.compile(r"[+-]?[0-9]+")


def _plain_text(status: int, text: str) -> web.Response:
    """component-base's ``writePlainText``: ``text/plain`` without a charset, ``nosniff``, the
    text plus a newline. Every answer of this endpoint is written this way."""
    resp = plain(status, text + "\n", content_type="text/plain")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _parse_level(raw: str) -> int | str:
    """klog's ``Level.Set``: Go's ``strconv.ParseInt(raw, 10, 32)``, the body as sent (no
    trimming, negative levels allowed); an error is upstream's message."""
    prefix = f"failed set klog.logging.verbosity {raw}: strconv.ParseInt: parsing {json.dumps(raw)}"
    if not _GO_INT.fullmatch(raw):
        return f"{prefix}: invalid syntax"
    level = int(raw, 10)
    if not -(2**31) <= level < 2**31:
        return f"{prefix}: value out of range"
    return level


async def _flags_v(request: web.Request) -> web.StreamResponse:
    if request.method != "PUT":
        return _plain_text(406, "unsupported http method")
    raw = (await request.read()).decode("utf-8", "replace")
    level = _parse_level(raw)
    if isinstance(level, str):
        return _plain_text(400, level)
    logging.getLogger("pykubelet").setLevel(logging.DEBUG if level >= 4 else logging.INFO)
    return _plain_text(200, f"successfully set klog.logging.verbosity to {raw}")


def debug_routes() -> list[web.AbstractRouteDef]:
    return [web.route("*", "/debug/flags/v", _flags_v)]

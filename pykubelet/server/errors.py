"""The one place errors become HTTP responses (bodies as reference §1.3, §2.1, §7).

Handlers raise ``pykubelet.core.errors`` kinds (or ``HttpError`` when upstream's exact status and
body differ from the kind's default); this module turns them into responses.
"""

from __future__ import annotations

import logging

from aiohttp import web

from pykubelet.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PykubeletError,
    Unauthenticated,
    Unavailable,
)
from pykubelet.server.bare import BareResponse

__all__ = [
    "HttpError",
    "error_response",
    "go_error",
    "mux_not_found",
    "plain",
    "restful_error",
]

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"


class HttpError(PykubeletError):
    """An error with upstream's exact status and body. ``content_type`` None sends no
    Content-Type header (as /containerLogs does for its 400s)."""

    def __init__(self, status: int, body: str, *, content_type: str | None = TEXT) -> None:
        super().__init__(body)
        self.status = status
        self.body = body
        self.content_type = content_type


def plain(status: int, body: str, *, content_type: str | None = TEXT) -> web.Response:
    """A response with exactly ``body``; ``content_type`` None omits the header."""
    if content_type is None:
        return BareResponse(status=status, body=body.encode())
    resp = web.Response(status=status, body=body.encode())
    resp.headers["Content-Type"] = content_type
    return resp


def go_error(status: int, message: str) -> web.Response:
    """Go's ``http.Error``: the message plus a newline, text/plain, nosniff."""
    resp = plain(status, message + "\n")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def mux_not_found() -> web.Response:
    return go_error(404, "404 page not found")


def restful_error(status: int, method: str = "GET") -> web.Response:
    """go-restful's route-level errors: ``404: Page Not Found`` and friends (HEAD: no body)."""
    text = {404: "404: Page Not Found", 405: "405: Method Not Allowed", 406: "406: Not Acceptable"}
    return plain(status, "" if method == "HEAD" else text.get(status, str(status)))


_STATUS: tuple[tuple[type[PykubeletError], int], ...] = (
    (NotFound, 404),
    (InvalidInput, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (Conflict, 409),
    (Unavailable, 503),
)


def error_response(exc: BaseException) -> web.Response:
    """Map an exception to a response; unknown ones are 500 with the traceback logged once."""
    if isinstance(exc, HttpError):
        return plain(exc.status, exc.body, content_type=exc.content_type)
    if isinstance(exc, PykubeletError):
        for kind, status in _STATUS:
            if isinstance(exc, kind):
                if status >= 500:
                    log.warning("request failed: %s", exc)
                return plain(status, str(exc))
    log.error("unhandled error serving a request", exc_info=exc)
    return plain(500, "Internal Error: " + str(exc))

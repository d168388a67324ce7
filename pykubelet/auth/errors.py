"""Errors of the auth package, as subclasses of the shared kinds in ``pykubelet.core.errors``.

A bad token file or policy file is ``InvalidInput`` (refused at start, the message names the
line or document and the field); an authorizer or webhook that cannot answer is ``Unavailable``
(the server turns an ``AuthorizerError`` into 500 ``Authorization error (...)``).
"""

from __future__ import annotations

from pykubelet.core.errors import InvalidInput, Unavailable

__all__ = [
    "AuthorizerError",
    "PolicyFileError",
    "TokenFileError",
    "WebhookError",
]


class TokenFileError(InvalidInput):
    """The static token file is unreadable or malformed; the message names path and line."""


class PolicyFileError(InvalidInput):
    """The local policy file is unreadable or malformed; the message names document and field."""


class WebhookError(Unavailable):
    """A TokenReview / SubjectAccessReview call failed (transport, status, or a bad answer)."""

    def __init__(self, message: str, *, status: int = 0, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class AuthorizerError(Unavailable):
    """The authorizer itself failed: the request is answered 500, never allowed."""

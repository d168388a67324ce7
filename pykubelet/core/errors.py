"""The root of pykubelet's exception tree and the kinds every layer shares.

    PykubeletError
    ├── NotFound          (HTTP 404)
    ├── InvalidInput      (HTTP 400; a config or manifest field, a query parameter)
    ├── Conflict          (HTTP 409)
    ├── Unauthenticated   (HTTP 401)
    ├── Forbidden         (HTTP 403)
    └── Unavailable       (HTTP 503)

A package's own ``errors.py`` subclasses these, so callers catch at the level they mean and
``server/errors.py`` maps them to HTTP once.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PykubeletError",
    "Unauthenticated",
    "Unavailable",
]


class PykubeletError(Exception):
    """Base of every error pykubelet raises on purpose."""


class NotFound(PykubeletError):
    """The named object (pod, container, sandbox, image, path) does not exist."""


class InvalidInput(PykubeletError):
    """Input broke a rule; ``field`` names what was wrong (``spec.containers[0].image``)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class Conflict(PykubeletError):
    """The request contradicts the current state (a duplicate pod, a name in use)."""


class Unauthenticated(PykubeletError):
    """No acceptable credentials were presented."""


class Forbidden(PykubeletError):
    """Credentials were fine but the action is not allowed."""


class Unavailable(PykubeletError):
    """A dependency (runtime, webhook) cannot answer now; retrying later may work."""

"""Bearer tokens from ``Authorization: Bearer <token>`` (reference §2.2).

A ``TokenAuthenticator`` maps a token to a user (``None`` = not recognised, an exception = could
not decide). ``BearerAuthenticator`` turns that into the request-level ``Authenticator``:

* no header, another scheme, or an empty token: no opinion (the chain goes on);
* a recognised token: the user, and the header is consumed so handlers never see it;
* an unrecognised token: an error ("invalid bearer token"), which is 401 even when anonymous
  access is on — a wrong credential never falls back to anonymous.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pykubelet.auth.errors import WebhookError
from pykubelet.auth.types import AuthResult, RequestInfo, UserInfo

__all__ = [
    "INVALID_TOKEN",
    "BearerAuthenticator",
    "TokenAuthenticator",
    "UnionTokenAuthenticator",
    "bearer_token",
]

INVALID_TOKEN = "invalid bearer token"


class TokenAuthenticator(Protocol):
    async def authenticate_token(self, token: str) -> UserInfo | None:
        """The user the token belongs to, ``None`` if unknown; raise when unable to decide."""
        ...


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization`` value, or ``""`` when it carries none.

    Like upstream: surrounding space trimmed, split on single spaces, scheme compared without
    case, so ``Bearer  x`` (two spaces) carries an empty token and is ignored."""
    parts = authorization.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return ""
    return parts[1]


class BearerAuthenticator:
    """The ``Authorization: Bearer`` step of the authentication chain."""

    def __init__(self, tokens: TokenAuthenticator) -> None:
        self._tokens = tokens

    async def authenticate(self, req: RequestInfo) -> AuthResult | None:
        token = bearer_token(req.headers.get("authorization", ""))
        if not token:
            return None
        try:
            user = await self._tokens.authenticate_token(token)
        except WebhookError as exc:
            return AuthResult(error=f"token review failed: {exc}")
        if user is None:
            return AuthResult(error=INVALID_TOKEN)
        return AuthResult(user=user, consumed_headers=("authorization",))


class UnionTokenAuthenticator:
    """Tries token authenticators in order (static file, then webhook); first user wins.

    An error is remembered and reported only if no later authenticator recognises the token,
    as upstream's union does."""

    def __init__(self, members: Sequence[TokenAuthenticator]) -> None:
        self._members = tuple(members)

    async def authenticate_token(self, token: str) -> UserInfo | None:
        first_error: WebhookError | None = None
        for member in self._members:
            try:
                user = await member.authenticate_token(token)
            except WebhookError as exc:
                first_error = first_error or exc
                continue
            if user is not None:
                return user
        if first_error is not None:
            raise first_error
        return None

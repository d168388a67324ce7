"""The anonymous identity, used only when enabled and no other authenticator had an opinion."""

from __future__ import annotations

from pykubelet.auth.types import AuthResult, RequestInfo, UserInfo

__all__ = ["ANONYMOUS_USER", "AnonymousAuthenticator"]

ANONYMOUS_USER = UserInfo(name="system:anonymous", groups=("system:unauthenticated",))


class AnonymousAuthenticator:
    async def authenticate(self, req: RequestInfo) -> AuthResult | None:
        return AuthResult(user=ANONYMOUS_USER)

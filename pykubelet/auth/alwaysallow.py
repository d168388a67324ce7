"""The AlwaysAllow authorizer: every authenticated request (incl. anonymous) is allowed."""

from __future__ import annotations

from pykubelet.auth.types import Attributes, AuthorizationResult, Decision

__all__ = ["AlwaysAllowAuthorizer"]


class AlwaysAllowAuthorizer:
    async def authorize(self, attrs: Attributes) -> AuthorizationResult:
        return AuthorizationResult(decision=Decision.ALLOW)

"""The union authenticator with upstream's rules (reference §2.2).

Authenticators are asked in order; the first user wins. An error from any of them ends the chain
with that error (401) — the anonymous fallback only applies when every other authenticator said
"no opinion" without error. Authenticated (non-anonymous) users get ``system:authenticated``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pykubelet.auth.anonymous import AnonymousAuthenticator
from pykubelet.auth.types import Authenticator, AuthResult, RequestInfo, UserInfo
from pykubelet.auth.x509 import X509Authenticator
from pykubelet.core.errors import InvalidInput

__all__ = ["UnionAuthenticator", "build_authenticator"]

_AUTHENTICATED = "system:authenticated"
_UNAUTHENTICATED = "system:unauthenticated"


class UnionAuthenticator:
    """``authenticators`` are tried in order; ``anonymous`` (if set) is the last resort."""

    def __init__(
        self, authenticators: Sequence[Authenticator], anonymous: Authenticator | None = None
    ) -> None:
        self._authenticators = tuple(authenticators)
        self._anonymous = anonymous
        # id(user) -> (user, user with system:authenticated): token and certificate steps hand
        # back the same UserInfo object for the same credential, so the copy is made once.
        self._joined: dict[int, tuple[UserInfo, UserInfo]] = {}

    async def authenticate(self, req: RequestInfo) -> AuthResult | None:
        errors: list[str] = []
        consumed: list[str] = []
        for a in self._authenticators:
            res = await a.authenticate(req)
            if res is None:
                continue
            if res.user is not None and not res.error and not consumed:
                # the usual request: the first credential found is good
                return AuthResult(
                    user=self._authenticated(res.user),
                    consumed_headers=res.consumed_headers,
                    rewritten_headers=res.rewritten_headers,
                )
            consumed.extend(res.consumed_headers)
            if res.error:
                errors.append(res.error)
                continue
            if res.user is not None:
                return AuthResult(
                    user=self._authenticated(res.user),
                    consumed_headers=tuple(consumed),
                    rewritten_headers=res.rewritten_headers,
                )
        if errors:
            return AuthResult(error="; ".join(errors), consumed_headers=tuple(consumed))
        if self._anonymous is not None:
            return await self._anonymous.authenticate(req)
        return None

    def _authenticated(self, user: UserInfo) -> UserInfo:
        """``user`` with group ``system:authenticated`` (unless it has it, or is anonymous)."""
        hit = self._joined.get(id(user))
        if hit is not None and hit[0] is user:  # the entry holds ``user``: its id is not reused
            return hit[1]
        groups = user.groups
        if _AUTHENTICATED not in groups and _UNAUTHENTICATED not in groups:
            groups = (*groups, _AUTHENTICATED)
        joined = replace(user, groups=groups)
        if len(self._joined) >= _JOINED_MAX:
            self._joined.clear()
        self._joined[id(user)] = (user, joined)
        return joined


_JOINED_MAX = 1024


def build_authenticator(
    *, client_ca_file: str, anonymous_enabled: bool, extra: Sequence[Authenticator] = ()
) -> UnionAuthenticator:
    """x509 (when a CA file is given), then ``extra`` (token authenticators), then anonymous.

    With nothing configured and anonymous off, the kubelet refuses to start, as upstream does.
    """
    chain: list[Authenticator] = []
    if client_ca_file:
        chain.append(X509Authenticator(client_ca_file))
    chain.extend(extra)
    if not chain and not anonymous_enabled:
        raise InvalidInput(
            "No authentication method configured: set authentication.x509.clientCAFile "
            "or enable anonymous authentication",
            field="authentication",
        )
    return UnionAuthenticator(chain, AnonymousAuthenticator() if anonymous_enabled else None)

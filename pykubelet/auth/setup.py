"""Building the auth chain and the authorizer from configuration (for the composition root).

``build_token_authenticators`` gives the bearer-header and WebSocket-token steps over one token
source (the static file, then the TokenReview webhook); pass them as ``extra`` to
``auth.chain.build_authenticator``. ``build_authorizer`` gives the authorizer for
``authorization.mode``.
"""

from __future__ import annotations

import logging
import os

from pykubelet.auth.alwaysallow import AlwaysAllowAuthorizer
from pykubelet.auth.bearer import BearerAuthenticator, TokenAuthenticator, UnionTokenAuthenticator
from pykubelet.auth.policy import PolicyAuthorizer
from pykubelet.auth.tokenfile import StaticTokenFile
from pykubelet.auth.tokenreview import TokenReviewAuthenticator
from pykubelet.auth.types import Authenticator, Authorizer
from pykubelet.auth.webhook_authz import WebhookAuthorizer
from pykubelet.auth.webhook_client import ReviewPoster
from pykubelet.auth.websocket_token import WebSocketTokenAuthenticator
from pykubelet.core.clock import Clock, SystemClock
from pykubelet.core.errors import InvalidInput

__all__ = ["AUTHORIZATION_MODES", "build_authorizer", "build_token_authenticators"]

log = logging.getLogger(__name__)

AUTHORIZATION_MODES = ("AlwaysAllow", "Webhook", "Policy")


def build_token_authenticators(
    *,
    token_file: str = "",
    review_poster: ReviewPoster | None = None,
    cache_ttl_s: float = 120.0,
    clock: Clock | None = None,
) -> list[Authenticator]:
    """``[BearerAuthenticator, WebSocketTokenAuthenticator]`` over the configured token sources,
    or ``[]`` when there are none. A bad token file raises ``TokenFileError`` (refuse to start)."""
    sources: list[TokenAuthenticator] = []
    if token_file:
        sources.append(StaticTokenFile(token_file))
    if review_poster is not None:
        sources.append(
            TokenReviewAuthenticator(
                review_poster, cache_ttl=cache_ttl_s, clock=clock or SystemClock()
            )
        )
    if not sources:
        return []
    tokens: TokenAuthenticator = (
        sources[0] if len(sources) == 1 else UnionTokenAuthenticator(sources)
    )
    return [BearerAuthenticator(tokens), WebSocketTokenAuthenticator(tokens)]


def build_authorizer(
    mode: str,
    *,
    policy_file: str = "",
    policy_file_required: bool = False,
    review_poster: ReviewPoster | None = None,
    authorized_ttl_s: float = 300.0,
    unauthorized_ttl_s: float = 30.0,
    clock: Clock | None = None,
) -> Authorizer:
    """The authorizer for ``mode``. ``Policy`` reads ``policy_file``; when that file does not
    exist and was not named explicitly (``policy_file_required`` false), the built-in default
    (everything to ``system:masters``, nothing else) is used."""
    if mode == "AlwaysAllow":
        return AlwaysAllowAuthorizer()
    if mode == "Webhook":
        if review_poster is None:
            raise InvalidInput(
                "authorization mode Webhook needs an API server (a kubeconfig)",
                field="authorization.mode",
            )
        return WebhookAuthorizer(
            review_poster,
            authorized_ttl=authorized_ttl_s,
            unauthorized_ttl=unauthorized_ttl_s,
            clock=clock or SystemClock(),
        )
    if mode == "Policy":
        if policy_file and (policy_file_required or os.path.exists(policy_file)):
            return PolicyAuthorizer.from_file(policy_file)
        log.info("no policy file at %r: built-in policy (system:masters only)", policy_file)
        return PolicyAuthorizer.default()
    if not mode:
        raise InvalidInput("no authorization mode specified", field="authorization.mode")
    raise InvalidInput(f"unknown authorization mode {mode}", field="authorization.mode")

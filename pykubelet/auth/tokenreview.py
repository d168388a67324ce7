"""The TokenReview webhook (``authentication.k8s.io/v1``), with upstream's cache and retries.

``authenticated: true`` gives the user from ``status.user``; ``authenticated: false`` is an
unknown token (the bearer step turns it into 401). Both answers are cached for ``cache_ttl``
(default 2 min), keyed by a SHA-256 of the token; transport errors are retried (500 ms x1.5,
5 steps) and never cached.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pykubelet.auth.cache import TTLCache, digest_key
from pykubelet.auth.errors import WebhookError
from pykubelet.auth.types import UserInfo
from pykubelet.auth.webhook_client import Backoff, ReviewPoster, post_with_retry
from pykubelet.core.clock import Clock, SystemClock

__all__ = ["TOKENREVIEW_PATH", "TokenReviewAuthenticator", "parse_token_review"]

TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


@dataclass(frozen=True, slots=True)
class _Answer:
    user: UserInfo | None


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WebhookError(f"TokenReview {where} must be a list of strings")
    return tuple(value)


def parse_token_review(answer: Mapping[str, Any]) -> UserInfo | None:
    """The user a TokenReview answer names, ``None`` when not authenticated."""
    status = answer.get("status")
    if not isinstance(status, dict):
        raise WebhookError("TokenReview answer has no status object")
    if status.get("authenticated") is not True:
        return None
    user = status.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("username"), str):
        raise WebhookError("TokenReview status.user.username missing")
    extra_raw = user.get("extra") or {}
    if not isinstance(extra_raw, dict):
        raise WebhookError("TokenReview status.user.extra must be an object")
    extra = {str(k): _strings(v, f"status.user.extra[{k!r}]") for k, v in extra_raw.items()}
    uid = user.get("uid", "")
    return UserInfo(
        name=user["username"],
        uid=uid if isinstance(uid, str) else "",
        groups=_strings(user.get("groups"), "status.user.groups"),
        extra=extra,
    )


class TokenReviewAuthenticator:
    """A ``TokenAuthenticator`` asking the API server (or any TokenReview endpoint)."""

    def __init__(
        self,
        poster: ReviewPoster,
        *,
        cache_ttl: float = 120.0,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        audiences: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> None:
        self._poster = poster
        self._ttl = cache_ttl
        self._clock = clock or SystemClock()
        self._cache: TTLCache[_Answer] = TTLCache(self._clock)
        self._backoff = backoff or Backoff()
        self._audiences = audiences
        self._rng = rng
        self.requests_sent = 0  # reviews actually posted (cache misses), for tests and metrics

    async def authenticate_token(self, token: str) -> UserInfo | None:
        key = digest_key(token)
        cached = self._cache.get(key)
        if cached is not None:
            return cached.user
        spec: dict[str, Any] = {"token": token}
        if self._audiences:
            spec["audiences"] = list(self._audiences)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        self.requests_sent += 1
        answer = await post_with_retry(
            self._poster,
            TOKENREVIEW_PATH,
            body,
            clock=self._clock,
            backoff=self._backoff,
            rng=self._rng,
        )
        user = parse_token_review(answer)
        self._cache.put(key, _Answer(user), self._ttl)
        return user

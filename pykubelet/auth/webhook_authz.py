"""The SubjectAccessReview authorizer (``authorization.k8s.io/v1``), as the kubelet's ``Webhook``
mode: allowed answers cached 5 min, denied (and no-opinion) answers 30 s; a failed call raises
``AuthorizerError`` (the server answers 500 ``Authorization error (...)``), never allows.
"""

from __future__ import annotations

import random
from typing import Any

from pykubelet.auth.cache import TTLCache, digest_key
from pykubelet.auth.errors import AuthorizerError, WebhookError
from pykubelet.auth.types import Attributes, AuthorizationResult, Decision
from pykubelet.auth.webhook_client import Backoff, ReviewPoster, post_with_retry
from pykubelet.core.clock import Clock, SystemClock

__all__ = ["SAR_PATH", "WebhookAuthorizer", "subject_access_review"]

SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def subject_access_review(attrs: Attributes) -> dict[str, Any]:
    """The review body for ``attrs``; empty strings omitted as Go's encoder does."""
    resource = {
        "namespace": attrs.namespace,
        "verb": attrs.verb,
        "group": attrs.api_group,
        "version": attrs.api_version,
        "resource": attrs.resource,
        "subresource": attrs.subresource,
        "name": attrs.name,
    }
    spec: dict[str, Any] = {"resourceAttributes": {k: v for k, v in resource.items() if v}}
    spec["user"] = attrs.user.name
    if attrs.user.groups:
        spec["groups"] = list(attrs.user.groups)
    if attrs.user.extra:
        spec["extra"] = {k: list(v) for k, v in attrs.user.extra.items()}
    if attrs.user.uid:
        spec["uid"] = attrs.user.uid
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": spec,
    }


def _cache_key(body: dict[str, Any]) -> str:
    spec = body["spec"]
    ra = spec["resourceAttributes"]
    extra = spec.get("extra", {})
    return digest_key(
        spec["user"],
        spec.get("uid", ""),
        "\x00".join(spec.get("groups", [])),
        "\x00".join(f"{k}={','.join(v)}" for k, v in sorted(extra.items())),
        *(f"{k}={ra[k]}" for k in sorted(ra)),
    )


class WebhookAuthorizer:
    def __init__(
        self,
        poster: ReviewPoster,
        *,
        authorized_ttl: float = 300.0,
        unauthorized_ttl: float = 30.0,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._poster = poster
        self._allow_ttl = authorized_ttl
        self._deny_ttl = unauthorized_ttl
        self._clock = clock or SystemClock()
        self._cache: TTLCache[AuthorizationResult] = TTLCache(self._clock)
        self._backoff = backoff or Backoff()
        self._rng = rng
        self.requests_sent = 0

    async def authorize(self, attrs: Attributes) -> AuthorizationResult:
        body = subject_access_review(attrs)
        key = _cache_key(body)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        self.requests_sent += 1
        try:
            answer = await post_with_retry(
                self._poster,
                SAR_PATH,
                body,
                clock=self._clock,
                backoff=self._backoff,
                rng=self._rng,
            )
        except WebhookError as exc:
            raise AuthorizerError(f"SubjectAccessReview failed: {exc}") from exc
        status = answer.get("status")
        if not isinstance(status, dict):
            raise AuthorizerError("SubjectAccessReview answer has no status object")
        reason = status.get("reason", "")
        reason = reason if isinstance(reason, str) else ""
        if status.get("allowed") is True:
            result = AuthorizationResult(decision=Decision.ALLOW, reason=reason)
            self._cache.put(key, result, self._allow_ttl)
        else:
            decision = Decision.DENY if status.get("denied") is True else Decision.NO_OPINION
            result = AuthorizationResult(decision=decision, reason=reason)
            self._cache.put(key, result, self._deny_ttl)
        return result

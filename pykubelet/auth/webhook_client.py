"""The HTTPS client behind TokenReview and SubjectAccessReview: POST a JSON review, read JSON.

``ReviewPoster`` is the seam: node mode may hand in its API-server client; ``HTTPSReviewPoster``
is the stdlib default (``http.client`` on a worker thread, so the event loop never blocks and the
auth package needs no HTTP framework). ``post_with_retry`` retries what upstream retries —
transport errors, 429 and 5xx — with exponential back-off (500 ms, x1.5, jitter 0.2, 5 steps).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pykubelet.auth.errors import WebhookError
from pykubelet.core.clock import Clock

__all__ = ["Backoff", "HTTPSReviewPoster", "ReviewPoster", "post_with_retry"]


class ReviewPoster(Protocol):
    async def post_json(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """POST ``body`` to ``path``; the decoded 2xx answer. Raise ``WebhookError`` otherwise
        (``retryable`` for transport errors, 429 and 5xx)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    initial: float = 0.5
    factor: float = 1.5
    jitter: float = 0.2
    steps: int = 5


class HTTPSReviewPoster:
    """POSTs to ``base_url`` (``https://host:port[/prefix]``) with the given TLS context."""

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        bearer_token: str = "",
        timeout: float = 10.0,
    ) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise ValueError(f"webhook url must be https://host[:port], got {base_url!r}")
        self._scheme = url.scheme
        self._host = url.hostname
        self._port = url.port
        self._prefix = url.path.rstrip("/")
        self._ssl = ssl_context
        self._token = bearer_token
        self._timeout = timeout

    def _post(self, path: str, payload: bytes) -> tuple[int, bytes]:
        conn: http.client.HTTPConnection
        if self._scheme == "https":
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            conn.request("POST", self._prefix + path, body=payload, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read(4 << 20)
        finally:
            conn.close()

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        payload = json.dumps(body).encode()
        try:
            status, data = await asyncio.to_thread(self._post, path, payload)
        except (OSError, http.client.HTTPException) as exc:
            raise WebhookError(f"{path}: {exc}", retryable=True) from exc
        if not 200 <= status < 300:
            retryable = status == 429 or status >= 500
            text = data[:200].decode("utf-8", "replace")
            raise WebhookError(f"{path}: HTTP {status}: {text}", status=status, retryable=retryable)
        try:
            answer = json.loads(data)
        except ValueError as exc:
            raise WebhookError(f"{path}: answer is not JSON: {exc}", status=status) from exc
        if not isinstance(answer, dict):
            raise WebhookError(f"{path}: answer is not a JSON object", status=status)
        return answer


async def post_with_retry(
    poster: ReviewPoster,
    path: str,
    body: Mapping[str, Any],
    *,
    clock: Clock,
    backoff: Backoff,
    rng: random.Random | None = None,
) -> Mapping[str, Any]:
    """``poster.post_json`` with upstream's retry policy; the last error if every step fails."""
    rng = rng or random.Random()
    delay = backoff.initial
    for step in range(1, backoff.steps + 1):
        try:
            return await poster.post_json(path, body)
        except WebhookError as exc:
            if not exc.retryable or step == backoff.steps:
                raise
        await clock.sleep(delay * (1 + backoff.jitter * rng.random()))
        delay *= backoff.factor
    raise AssertionError("unreachable")  # pragma: no cover

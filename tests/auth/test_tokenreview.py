"""TokenReview client and cache against a real local HTTPS endpoint."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest

from pykubelet.auth.bearer import INVALID_TOKEN, BearerAuthenticator
from pykubelet.auth.errors import WebhookError
from pykubelet.auth.tokenreview import TokenReviewAuthenticator
from pykubelet.auth.types import RequestInfo, UserInfo
from pykubelet.auth.webhook_client import Backoff, HTTPSReviewPoster
from pykubelet.core.clock import FakeClock
from tests.auth.webhook_server import review_server

FAST = Backoff(initial=0.01, factor=1.5, jitter=0.2, steps=5)


def answer(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    token = body["spec"]["token"]
    if token == "good":
        status = {
            "authenticated": True,
            "user": {
                "username": "system:serviceaccount:kube-system:metrics",
                "uid": "u-1",
                "groups": ["system:serviceaccounts"],
                "extra": {"authentication.kubernetes.io/pod-name": ["metrics-0"]},
            },
        }
    elif token == "garbage":
        return 200, {"status": "not an object"}
    else:
        status = {"authenticated": False, "error": "token expired"}
    return 200, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}


async def test_review_round_trip_over_mutual_tls(tmp_path: Path) -> None:
    async with review_server(tmp_path, answer) as srv:
        poster = HTTPSReviewPoster(srv.url, ssl_context=srv.client_context())
        auth = TokenReviewAuthenticator(poster, backoff=FAST)
        user = await auth.authenticate_token("good")
        assert user == UserInfo(
            name="system:serviceaccount:kube-system:metrics",
            uid="u-1",
            groups=("system:serviceaccounts",),
            extra={"authentication.kubernetes.io/pod-name": ("metrics-0",)},
        )
        assert srv.bodies == [
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": "good"},
            }
        ]
        assert srv.client_cns == ["system:node:test"]  # our client certificate was presented
        assert await auth.authenticate_token("expired") is None


async def test_unauthenticated_answer_is_401_through_the_bearer_step(tmp_path: Path) -> None:
    async with review_server(tmp_path, answer) as srv:
        poster = HTTPSReviewPoster(srv.url, ssl_context=srv.client_context())
        bearer = BearerAuthenticator(TokenReviewAuthenticator(poster, backoff=FAST))
        req = RequestInfo(method="GET", path="/pods", headers={"authorization": "Bearer bad"})
        res = await bearer.authenticate(req)
        assert res is not None and res.user is None and res.error == INVALID_TOKEN


async def test_success_and_failure_cached_for_ttl_errors_not_cached(tmp_path: Path) -> None:
    clock = FakeClock()
    async with review_server(tmp_path, answer) as srv:
        poster = HTTPSReviewPoster(srv.url, ssl_context=srv.client_context())
        auth = TokenReviewAuthenticator(poster, cache_ttl=120, clock=clock, backoff=FAST)
        for _ in range(3):
            assert await auth.authenticate_token("good") is not None
            assert await auth.authenticate_token("bad") is None
        assert len(srv.bodies) == 2
        await clock.advance(119)
        assert await auth.authenticate_token("good") is not None
        assert len(srv.bodies) == 2
        await clock.advance(2)  # past the 2 minute TTL: asked again
        assert await auth.authenticate_token("good") is not None
        assert await auth.authenticate_token("bad") is None
        assert len(srv.bodies) == 4
        # A malformed answer is an error: not cached, asked again next time.
        for _ in range(2):
            with pytest.raises(WebhookError, match="no status object"):
                await auth.authenticate_token("garbage")
        assert len(srv.bodies) == 6


async def test_retries_with_backoff_then_succeeds(tmp_path: Path) -> None:
    clock = FakeClock()
    async with review_server(tmp_path, answer) as srv:
        srv.fail_next = 3
        poster = HTTPSReviewPoster(srv.url, ssl_context=srv.client_context())
        auth = TokenReviewAuthenticator(poster, clock=clock, backoff=Backoff())
        task = asyncio.create_task(auth.authenticate_token("good"))
        deadline = asyncio.get_running_loop().time() + 10
        while not task.done():
            assert asyncio.get_running_loop().time() < deadline
            await clock.advance(1.0)  # each back-off step is <= 0.5*1.5^k*1.2 s
            await asyncio.sleep(0.01)
        assert (await task) is not None
        assert len(srv.bodies) == 4  # 3 failures, then the answer


async def test_gives_up_after_five_steps(tmp_path: Path) -> None:
    async with review_server(tmp_path, answer) as srv:
        srv.fail_next = 100
        poster = HTTPSReviewPoster(srv.url, ssl_context=srv.client_context())
        auth = TokenReviewAuthenticator(poster, backoff=FAST)
        with pytest.raises(WebhookError, match="HTTP 500"):
            await auth.authenticate_token("good")
        assert len(srv.bodies) == 5


async def test_untrusted_server_certificate_is_a_transport_error(tmp_path: Path) -> None:
    async with review_server(tmp_path, answer) as srv:
        ctx = ssl.create_default_context()  # system CAs: our test CA is not among them
        auth = TokenReviewAuthenticator(HTTPSReviewPoster(srv.url, ssl_context=ctx), backoff=FAST)
        with pytest.raises(WebhookError, match="CERTIFICATE_VERIFY_FAILED"):
            await auth.authenticate_token("good")
        assert srv.bodies == []


def test_bad_url_is_rejected() -> None:
    with pytest.raises(ValueError, match="webhook url"):
        HTTPSReviewPoster("ftp://example")

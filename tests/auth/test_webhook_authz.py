"""SubjectAccessReview authorizer against a real local HTTPS endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pykubelet.auth.errors import AuthorizerError
from pykubelet.auth.types import Attributes, Decision, UserInfo
from pykubelet.auth.webhook_authz import WebhookAuthorizer, subject_access_review
from pykubelet.auth.webhook_client import Backoff, HTTPSReviewPoster
from pykubelet.core.clock import FakeClock
from tests.auth.webhook_server import review_server

FAST = Backoff(initial=0.01, steps=2)
ALICE = UserInfo(name="alice", uid="u1", groups=("ops", "system:authenticated"))
BOB = UserInfo(name="bob", groups=("system:authenticated",))


def attrs(user: UserInfo, verb: str = "get", sub: str = "stats") -> Attributes:
    return Attributes(user=user, verb=verb, name="node-1", subresource=sub, path="/stats/summary")


def answer(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    spec = body["spec"]
    if spec["user"] == "alice":
        status = {"allowed": True, "reason": "alice may"}
    elif spec["user"] == "mallory":
        status = {"allowed": False, "denied": True, "reason": "explicitly denied"}
    elif spec["user"] == "broken":
        return 200, {"kind": "SubjectAccessReview"}
    else:
        status = {"allowed": False}
    return 200, {"status": status}


def test_review_body_matches_upstream_shape() -> None:
    body = subject_access_review(attrs(ALICE))
    assert body == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "verb": "get",
                "version": "v1",
                "resource": "nodes",
                "subresource": "stats",
                "name": "node-1",
            },
            "user": "alice",
            "groups": ["ops", "system:authenticated"],
            "uid": "u1",
        },
    }


async def test_allow_deny_no_opinion(tmp_path: Path) -> None:
    async with review_server(tmp_path, answer) as srv:
        authz = WebhookAuthorizer(
            HTTPSReviewPoster(srv.url, ssl_context=srv.client_context()), backoff=FAST
        )
        allowed = await authz.authorize(attrs(ALICE))
        assert allowed.decision is Decision.ALLOW and allowed.reason == "alice may"
        denied = await authz.authorize(attrs(UserInfo(name="mallory")))
        assert denied.decision is Decision.DENY
        assert (await authz.authorize(attrs(BOB))).decision is Decision.NO_OPINION
        assert srv.bodies[0] == subject_access_review(attrs(ALICE))


async def test_allow_cached_5m_deny_cached_30s(tmp_path: Path) -> None:
    clock = FakeClock()
    async with review_server(tmp_path, answer) as srv:
        authz = WebhookAuthorizer(
            HTTPSReviewPoster(srv.url, ssl_context=srv.client_context()), clock=clock, backoff=FAST
        )

        async def ask() -> None:
            await authz.authorize(attrs(ALICE))
            await authz.authorize(attrs(BOB))

        await ask()
        await ask()
        assert len(srv.bodies) == 2
        await clock.advance(31)  # deny expired, allow still cached
        await ask()
        assert [b["spec"]["user"] for b in srv.bodies] == ["alice", "bob", "bob"]
        await clock.advance(270)  # 301 s after the first allow
        await ask()
        assert [b["spec"]["user"] for b in srv.bodies[3:]] == ["alice", "bob"]
        # A different verb or subresource is a different question.
        await authz.authorize(attrs(ALICE, verb="create", sub="proxy"))
        assert len(srv.bodies) == 6


async def test_failure_raises_authorizer_error_and_is_not_cached(tmp_path: Path) -> None:
    async with review_server(tmp_path, answer) as srv:
        authz = WebhookAuthorizer(
            HTTPSReviewPoster(srv.url, ssl_context=srv.client_context()), backoff=FAST
        )
        srv.fail_next = 2
        with pytest.raises(AuthorizerError, match="HTTP 500"):
            await authz.authorize(attrs(ALICE))
        assert (await authz.authorize(attrs(ALICE))).decision is Decision.ALLOW
        with pytest.raises(AuthorizerError, match="no status"):
            await authz.authorize(attrs(UserInfo(name="broken")))

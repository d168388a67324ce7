"""Whole-server behaviour of each security posture, over real TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from aiohttp import web

from pykubelet.auth.chain import build_authenticator
from pykubelet.auth.policy import PolicyAuthorizer
from pykubelet.auth.ratelimit import AuthFailureLimiter, LimiterSettings
from pykubelet.auth.setup import build_authorizer, build_token_authenticators
from pykubelet.auth.webhook_authz import WebhookAuthorizer
from pykubelet.auth.webhook_client import Backoff, HTTPSReviewPoster
from pykubelet.auth.websocket_token import encode_token_protocol
from pykubelet.security.doctor import probe_endpoint
from pykubelet.security.setup import request_audit_id
from pykubelet.server import ServerBackends
from pykubelet.server.audit import AuditLog, AuditObserver
from tests.conftest import free_port
from tests.server.harness import Pki, StaticPods, TinyRuntime, fetch, running, settings_for

TOKENS = "admin-token,root,1,system:masters\n"


def token_file(tmp_path: Path) -> str:
    p = tmp_path / "tokens.csv"
    p.write_text(TOKENS)
    p.chmod(0o600)
    return str(p)


async def echo(request: web.Request) -> web.Response:
    """Shows what a handler sees of the credentials (it must see none)."""
    return web.json_response(
        {
            "authorization": request.headers.get("Authorization"),
            "protocols": request.headers.get("Sec-WebSocket-Protocol"),
            "auditID": request_audit_id(request),
        }
    )


def backends(**kw: object) -> ServerBackends:
    base: dict[str, object] = dict(
        pods=StaticPods(),
        runtime=TinyRuntime(),
        extra_routes=[web.get("/exec/{ns}/{pod}/{ctr}", echo, allow_head=False)],
    )
    base.update(kw)
    return ServerBackends(**base)  # type: ignore[arg-type]


async def test_open_kubelet_behaves_like_upstreams(pki: Pki, tmp_path: Path) -> None:
    """anonymous + AlwaysAllow + read-only port: the configuration an attacker hopes for."""
    settings = settings_for(pki, anonymous_enabled=True, read_only_port=-1)
    authn = build_authenticator(
        client_ca_file=settings.client_ca_file,
        anonymous_enabled=True,
        extra=build_token_authenticators(token_file=token_file(tmp_path)),
    )
    b = backends(authenticator=authn, authorizer=build_authorizer("AlwaysAllow"))
    async with running(settings, b) as s:
        assert s.full_port and s.read_only_port
        anon = pki.client_context(None)
        pods = await fetch(s.full_port, "/pods", ctx=anon)
        assert pods.status == 200 and b'"kind":"PodList"' in pods.body
        ex = await fetch(s.full_port, "/exec/default/web/app?command=id", ctx=anon)
        assert ex.status == 200  # anyone reaches the exec handler
        ro = await fetch(s.read_only_port, "/pods")
        assert ro.status == 200 and b'"kind":"PodList"' in ro.body
        # ... and still: a wrong credential is 401, never anonymous.
        bad = await fetch(s.full_port, "/pods", ctx=anon, headers={"Authorization": "Bearer wrong"})
        assert (bad.status, bad.body) == (401, b"Unauthorized")
        rogue = await fetch(s.full_port, "/pods", ctx=pki.client_context(pki.rogue))
        assert (rogue.status, rogue.body) == (401, b"Unauthorized")
        found = await asyncio.to_thread(
            probe_endpoint,
            f"https://127.0.0.1:{s.full_port}",
            read_only_url=f"http://127.0.0.1:{s.read_only_port}",
        )
        assert {f.id: f.status for f in found} == {
            "PROBE-PODS": "FAIL",
            "PROBE-TLS": "PASS",  # even the open kubelet only speaks strong TLS 1.2
            "PROBE-RO": "FAIL",
        }


async def test_secure_default_probes_clean(pki: Pki) -> None:
    b = backends(authorizer=PolicyAuthorizer.default())
    async with running(settings_for(pki), b) as s:
        assert s.full_port
        found = await asyncio.to_thread(
            probe_endpoint,
            f"https://127.0.0.1:{s.full_port}",
            read_only_url=f"http://127.0.0.1:{free_port()}",
        )
        assert {f.id: f.status for f in found} == {
            "PROBE-PODS": "PASS",
            "PROBE-TLS": "PASS",
            "PROBE-RO": "PASS",
        }


async def test_anonymous_with_policy_is_403_with_upstream_body(pki: Pki, tmp_path: Path) -> None:
    settings = settings_for(pki, anonymous_enabled=True)
    b = backends(authorizer=PolicyAuthorizer.default())
    async with running(settings, b) as s:
        assert s.full_port
        r = await fetch(s.full_port, "/pods", ctx=pki.client_context(None))
        assert (r.status, r.body) == (
            403,
            b"Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)",
        )
        r = await fetch(
            s.full_port, "/exec/default/web/app?command=id", ctx=pki.client_context(None)
        )
        assert r.body.startswith(b"Forbidden (user=system:anonymous, verb=create,")
        ok = await fetch(s.full_port, "/pods", ctx=pki.client_context(pki.admin))
        assert ok.status == 200


async def test_authorizer_failure_is_500_never_allow(pki: Pki) -> None:
    dead = HTTPSReviewPoster(f"https://127.0.0.1:{free_port()}", timeout=2)
    authz = WebhookAuthorizer(dead, backoff=Backoff(initial=0.01, steps=2))
    async with running(settings_for(pki), backends(authorizer=authz)) as s:
        assert s.full_port
        r = await fetch(s.full_port, "/pods", ctx=pki.client_context(pki.admin))
        assert (r.status, r.body) == (
            500,
            b"Authorization error (user=admin, verb=get, resource=nodes, subresource=proxy)",
        )


async def test_credentials_never_reach_the_handler(pki: Pki, tmp_path: Path) -> None:
    authn = build_authenticator(
        client_ca_file=pki.ca.cert_file,
        anonymous_enabled=False,
        extra=build_token_authenticators(token_file=token_file(tmp_path)),
    )
    b = backends(authenticator=authn, authorizer=PolicyAuthorizer.default())
    async with running(settings_for(pki), b) as s:
        assert s.full_port
        ctx = pki.client_context(None)
        r = await fetch(
            s.full_port, "/exec/default/web/app", ctx=ctx,
            headers={"Authorization": "Bearer admin-token"},
        )  # fmt: skip
        seen = json.loads(r.body)
        assert r.status == 200 and seen["authorization"] is None
        assert len(seen["auditID"]) == 36
        ws = {
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Protocol": (
                f"v4.channel.k8s.io, {encode_token_protocol('admin-token')}, channel.k8s.io"
            ),
        }
        r = await fetch(s.full_port, "/exec/default/web/app", ctx=ctx, headers=ws)
        assert r.status == 200
        assert json.loads(r.body)["protocols"] == "v4.channel.k8s.io, channel.k8s.io"


async def test_repeated_failures_from_one_address_are_slowed(pki: Pki, tmp_path: Path) -> None:
    authn = build_authenticator(
        client_ca_file=pki.ca.cert_file,
        anonymous_enabled=False,
        extra=build_token_authenticators(token_file=token_file(tmp_path)),
    )
    limiter = AuthFailureLimiter(LimiterSettings(burst=5, rate=0.01))
    b = backends(authenticator=authn, authorizer=PolicyAuthorizer.default(), auth_limiter=limiter)
    async with running(settings_for(pki), b) as s:
        assert s.full_port
        anon = pki.client_context(None)
        statuses = []
        for i in range(8):
            r = await fetch(
                s.full_port, "/pods", ctx=anon, headers={"Authorization": f"Bearer guess-{i}"}
            )
            statuses.append(r.status)
            if r.status == 429:
                assert r.body == b"Too Many Requests"
                assert int(r.headers["retry-after"]) >= 1
        assert statuses == [401] * 5 + [429] * 3
        # Even the right token is not checked from this address for now: guessing gains nothing.
        right = await fetch(
            s.full_port, "/pods", ctx=anon, headers={"Authorization": "Bearer admin-token"}
        )
        assert right.status == 429
        # A client certificate holder at the same address is unaffected.
        cert = await fetch(s.full_port, "/pods", ctx=pki.client_context(pki.admin))
        assert cert.status == 200
        assert limiter.refused == 4


async def test_audit_log_covers_both_ports(pki: Pki, tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log")
    log.start()
    settings = settings_for(pki, read_only_port=-1)
    b = backends(
        authorizer=PolicyAuthorizer.default(),
        observer=AuditObserver(log, node_name="node-a"),
    )
    try:
        async with running(settings, b) as s:
            assert s.full_port and s.read_only_port and s.healthz_port
            await fetch(s.full_port, "/pods", ctx=pki.client_context(pki.admin))
            await fetch(s.full_port, "/pods", ctx=pki.client_context(None))
            await fetch(s.read_only_port, "/pods")
            await fetch(s.healthz_port, "/healthz")
            ex = await fetch(
                s.full_port, "/exec/default/web/app?command=id", ctx=pki.client_context(pki.admin)
            )
            handler_saw = json.loads(ex.body)["auditID"]
            deadline = time.monotonic() + 10
            while log.written < 4:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
    finally:
        log.close()
    events = [json.loads(x) for x in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(e["user"].get("username"), e["responseStatus"]["code"]) for e in events] == [
        ("admin", 200),
        (None, 401),
        (None, 200),
        ("admin", 200),
    ]
    # The handler (a session recording's file name) and the audit event share the audit ID.
    assert events[3]["auditID"] == handler_saw
    assert events[3]["annotations"]["pykubelet.io/command"] == '["id"]'
    events = events[:3]
    assert events[0]["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert events[0]["annotations"]["authorization.k8s.io/reason"].startswith("RBAC: allowed")
    assert events[2]["annotations"]["authorization.k8s.io/reason"].startswith("read-only port")
    assert all(e["objectRef"]["name"] == "node-a" for e in events)
    # objectRef names the subresource that granted the request (fine-grained nodes/pods)
    assert [e["objectRef"].get("subresource") for e in events] == ["pods", "proxy", "proxy"]

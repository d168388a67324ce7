"""Auth before routing on 10250; what 10255 and 10248 serve (reference §2.1, §8.6, §8.8, §8.9)."""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path

import pytest

from pykubelet.auth.types import (
    Attributes,
    AuthorizationResult,
    AuthResult,
    Decision,
    RequestInfo,
    UserInfo,
)
from pykubelet.server import RequestRecord, ServerBackends
from tests.server.harness import Pki, StaticPods, TinyRuntime, fetch, running, settings_for

PATHS_UNAUTH = [
    "/pods",
    "/pods/",
    "/pods/nope",
    "/healthz",
    "/healthz/ping",
    "/exec/x",
    "/exec/default/nosuchpod/c",
    "/containerLogs/default/nosuchpod/c",
    "/runningpods/",
    "/stats/summary",
    "/metrics",
    "/configz",
    "/logs/",
    "/run",
]


def backends(**kw: object) -> ServerBackends:
    return ServerBackends(pods=StaticPods(), runtime=TinyRuntime(), **kw)  # type: ignore[arg-type]


async def test_unauthenticated_gets_401_on_every_owned_path(pki: Pki) -> None:
    async with running(settings_for(pki), backends()) as s:
        assert s.full_port
        ctx = pki.client_context(None)
        for path in PATHS_UNAUTH:
            r = await fetch(s.full_port, path, ctx=ctx)
            assert (r.status, r.body) == (401, b"Unauthorized"), path
            assert "www-authenticate" not in r.headers


async def test_untrusted_certificate_is_401_even_with_anonymous_on(pki: Pki) -> None:
    async with running(settings_for(pki, anonymous_enabled=True), backends()) as s:
        assert s.full_port
        anon = await fetch(s.full_port, "/pods", ctx=pki.client_context(None))
        assert anon.status == 200
        rogue = await fetch(s.full_port, "/pods", ctx=pki.client_context(pki.rogue))
        assert (rogue.status, rogue.body) == (401, b"Unauthorized")


async def test_trusted_certificate_is_served(pki: Pki) -> None:
    async with running(settings_for(pki), backends()) as s:
        assert s.full_port
        r = await fetch(s.full_port, "/pods", ctx=pki.client_context(pki.admin))
        assert r.status == 200
        assert r.body == b'{"kind":"PodList","apiVersion":"v1","metadata":{},"items":null}\n'
        assert r.headers["content-type"] == "application/json"


async def test_no_authentication_method_refuses_to_start(pki: Pki) -> None:
    from pykubelet.core.errors import InvalidInput
    from pykubelet.server import KubeletServers

    servers = KubeletServers(settings_for(pki, client_ca_file=""), backends())
    with pytest.raises(InvalidInput, match="No authentication method configured"):
        await servers.run()
    assert servers.done.is_set()


async def test_node_ca_helper_issues_working_client_certs(tmp_path: Path, pki: Pki) -> None:
    from pykubelet.security.certs import create_client_cert, ensure_node_ca

    node_ca = ensure_node_ca(str(tmp_path / "pki"))
    assert ensure_node_ca(str(tmp_path / "pki")) == node_ca  # reused, not recreated
    alice = create_client_cert(str(tmp_path / "clients"), "alice", ca=node_ca)
    async with running(settings_for(pki, client_ca_file=node_ca.cert_file), backends()) as s:
        assert s.full_port
        assert (await fetch(s.full_port, "/pods", ctx=pki.client_context(alice))).status == 200
        r = await fetch(s.full_port, "/pods", ctx=pki.client_context(pki.admin))  # other CA
        assert (r.status, r.body) == (401, b"Unauthorized")


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("//pods", "/pods"),
        ("/pods/../healthz", "/healthz"),
        ("/%2e%2e/healthz", "/healthz"),
        ("/logs", "/logs/"),
        ("/stats", "/stats/"),
        ("/debug/pprof", "/debug/pprof/"),
        ("/runningpods", "/runningpods/"),
        ("/stats?x=1", "/stats/?x=1"),
    ],
)
async def test_paths_are_cleaned_and_redirected_before_auth(
    pki: Pki, target: str, location: str
) -> None:
    async with running(settings_for(pki), backends()) as s:
        assert s.full_port
        r = await fetch(s.full_port, target, ctx=pki.client_context(None))
        assert r.status == 301
        assert r.headers["location"] == location


@pytest.mark.parametrize("target", ["/foo", "/", "/api", "/checkpoint/a/b/c", "/healthz/bar"])
async def test_unowned_paths_are_404_before_auth(pki: Pki, target: str) -> None:
    async with running(settings_for(pki), backends()) as s:
        assert s.full_port
        r = await fetch(s.full_port, target, ctx=pki.client_context(None))
        assert (r.status, r.body) == (404, b"404 page not found\n")
        assert r.headers["x-content-type-options"] == "nosniff"


async def test_percent_encoded_paths_route_as_decoded(pki: Pki) -> None:
    async with running(settings_for(pki), backends()) as s:
        assert s.full_port
        ctx = pki.client_context(pki.admin)
        r = await fetch(s.full_port, "/%70ods", ctx=ctx)
        assert r.status == 200 and r.body.startswith(b'{"kind":"PodList"')
        r = await fetch(s.full_port, "/healthz%2Fping", ctx=ctx)
        assert (r.status, r.body) == (200, b"ok")


async def test_restful_route_errors(pki: Pki) -> None:
    async with running(settings_for(pki), backends()) as s:
        assert s.full_port
        ctx = pki.client_context(pki.admin)
        for target in ("/exec/default", "/run", "/attach", "/pods/nope"):
            r = await fetch(s.full_port, target, ctx=ctx)
            assert (r.status, r.body) == (404, b"404: Page Not Found"), target
        r = await fetch(s.full_port, "/pods", method="POST", ctx=ctx)
        assert (r.status, r.body) == (405, b"405: Method Not Allowed")
        r = await fetch(s.full_port, "/pods", method="HEAD", ctx=ctx)
        assert r.status == 405
        r = await fetch(s.full_port, "/pods", ctx=ctx, headers={"Accept": "text/plain"})
        assert (r.status, r.body) == (406, b"406: Not Acceptable")
        r = await fetch(s.full_port, "/pods", ctx=ctx, headers={"Accept": "application/json"})
        assert r.status == 200


class DenyAll:
    def __init__(self) -> None:
        self.seen: list[Attributes] = []

    async def authorize(self, attrs: Attributes) -> AuthorizationResult:
        self.seen.append(attrs)
        return AuthorizationResult(decision=Decision.DENY)


class Broken:
    async def authorize(self, attrs: Attributes) -> AuthorizationResult:
        raise RuntimeError("webhook down")


async def test_forbidden_and_authorizer_error_bodies(pki: Pki) -> None:
    deny = DenyAll()
    async with running(settings_for(pki, anonymous_enabled=True), backends(authorizer=deny)) as s:
        assert s.full_port
        r = await fetch(s.full_port, "/pods", ctx=pki.client_context(None))
        assert r.status == 403
        assert r.body == (
            b"Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)"
        )
        assert [a.subresource for a in deny.seen] == ["pods", "proxy"]
        r = await fetch(s.full_port, "/exec/a/b/c", method="GET", ctx=pki.client_context(pki.admin))
        assert r.body == b"Forbidden (user=admin, verb=create, resource=nodes, subresource=proxy)"
    async with running(settings_for(pki), backends(authorizer=Broken())) as s:
        assert s.full_port
        r = await fetch(s.full_port, "/stats/summary", ctx=pki.client_context(pki.admin))
        assert (r.status, r.body) == (
            500,
            b"Authorization error (user=admin, verb=get, resource=nodes, subresource=stats)",
        )


class Recorder:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def observe(self, record: RequestRecord) -> None:
        self.records.append(record)


async def test_observer_sees_every_request_once_with_attributes(pki: Pki) -> None:
    rec = Recorder()
    async with running(settings_for(pki), backends(observer=rec)) as s:
        assert s.full_port
        await fetch(s.full_port, "/pods?x=%2F", ctx=pki.client_context(pki.admin))
        await fetch(s.full_port, "/pods", ctx=pki.client_context(None))
        await fetch(s.full_port, "/foo", ctx=pki.client_context(None))
    ok, unauth, missing = rec.records
    assert (ok.request_uri, ok.path, ok.query) == ("/pods?x=%2F", "/pods", "x=%2F")
    assert (ok.status, ok.decision, ok.verb, ok.subresource) == (200, "allow", "get", "proxy")
    assert ok.subresources == ("pods", "proxy")
    assert ok.user is not None and ok.user.name == "admin"
    assert "system:authenticated" in ok.user.groups
    assert (unauth.status, unauth.decision, unauth.user) == (401, "unauthenticated", None)
    assert (missing.status, missing.decision) == (404, "none")


async def test_default_request_log_is_json(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pykubelet.server.requests")
    async with running(settings_for(pki), backends()) as s:
        assert s.full_port
        await fetch(s.full_port, "/healthz?verbose", ctx=pki.client_context(pki.admin))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("requests")]
    assert lines and lines[-1]["verb"] == "get"
    assert (lines[-1]["resource"], lines[-1]["subresource"]) == ("nodes", "proxy")
    assert lines[-1]["user"] == "admin" and lines[-1]["status"] == 200


async def test_healthz_port_serves_only_ping(pki: Pki) -> None:
    async with running(settings_for(pki), backends()) as s:
        assert s.healthz_port
        assert (await fetch(s.healthz_port, "/healthz")).body == b"ok"
        assert (await fetch(s.healthz_port, "/healthz/ping")).body == b"ok"
        r = await fetch(s.healthz_port, "/healthz?verbose")
        assert r.body == b"[+]ping ok\nhealthz check passed\n"
        for p in ("/healthz/log", "/healthz/syncloop", "/pods"):
            r = await fetch(s.healthz_port, p)
            assert (r.status, r.body) == (404, b"404 page not found\n"), p


async def test_listeners_can_be_turned_off(pki: Pki) -> None:
    async with running(settings_for(pki, enable_server=False, healthz_port=0), backends()) as s:
        assert (s.full_port, s.read_only_port, s.healthz_port) == (None, None, None)


async def test_read_only_port_has_no_auth_and_405_for_debug(pki: Pki) -> None:
    async with running(settings_for(pki, read_only_port=-1), backends()) as s:
        assert s.read_only_port
        r = await fetch(s.read_only_port, "/pods")
        assert r.status == 200
        for p in ("/exec/a/b/c", "/containerLogs/a/b/c", "/runningpods/", "/logs/", "/run/a/b/c"):
            r = await fetch(s.read_only_port, p)
            assert (r.status, r.body) == (405, b"Debug endpoints are disabled.\n"), p
        for p in ("/configz", "/debug/flags/v"):
            r = await fetch(s.read_only_port, p)
            assert r.status == 404, p


async def test_debugging_handlers_disabled(pki: Pki) -> None:
    async with running(settings_for(pki, enable_debugging_handlers=False), backends()) as s:
        assert s.full_port
        ctx = pki.client_context(pki.admin)
        r = await fetch(s.full_port, "/containerLogs/a/b/c", ctx=ctx)
        assert (r.status, r.body) == (405, b"Debug endpoints are disabled.\n")
        r = await fetch(s.full_port, "/configz", ctx=ctx)
        assert (r.status, r.body) == (404, b"404 page not found\n")
        r = await fetch(s.full_port, "/containerLogs/a/b/c", ctx=pki.client_context(None))
        assert r.status == 401


async def test_tls_floor_is_1_2(pki: Pki) -> None:
    async with running(settings_for(pki), backends()) as s:
        assert s.full_port
        ctx = pki.client_context(pki.admin)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        with pytest.raises(ssl.SSLError):
            await fetch(s.full_port, "/pods", ctx=ctx)


async def test_long_request_lines_are_accepted(pki: Pki) -> None:
    async with running(settings_for(pki), backends()) as s:
        assert s.full_port
        target = "/healthz?" + "&".join(f"exclude=x{i}" for i in range(3000))  # ~30 KB
        r = await fetch(s.full_port, target, ctx=pki.client_context(pki.admin))
        assert r.status == 200
        r = await fetch(
            s.full_port, "/pods", ctx=pki.client_context(None), headers={"X-Big": "a" * 20000}
        )
        assert r.status == 401


async def test_plugged_in_handlers_see_the_user_and_annotate(pki: Pki) -> None:
    from aiohttp import web

    from pykubelet.server import ANNOTATIONS_KEY, USER_KEY

    async def exec_like(request: web.Request) -> web.Response:
        user = request[USER_KEY]
        request[ANNOTATIONS_KEY]["pykubelet.io/command"] = "sh -c id"
        assert "authorization" not in request.headers  # consumed by the authenticator
        return web.Response(text=user.name)

    class Token:
        async def authenticate(self, req: RequestInfo) -> AuthResult | None:

            if req.headers.get("authorization") == "Bearer t0k":
                return AuthResult(
                    user=UserInfo(name="tok-user"), consumed_headers=("Authorization",)
                )
            return None

    from pykubelet.auth import build_authenticator

    rec = Recorder()
    authn = build_authenticator(
        client_ca_file=pki.ca.cert_file, anonymous_enabled=False, extra=[Token()]
    )
    b = backends(
        authenticator=authn,
        observer=rec,
        extra_debug_routes=[web.post("/run/{a}/{b}/{c}", exec_like)],
    )
    async with running(settings_for(pki), b) as s:
        assert s.full_port
        r = await fetch(
            s.full_port,
            "/run/ns/pod/c",
            method="POST",
            ctx=pki.client_context(None),
            headers={"Authorization": "Bearer t0k"},
        )
        assert (r.status, r.body) == (200, b"tok-user")
    (record,) = rec.records
    assert record.annotations == {"pykubelet.io/command": "sh -c id"}
    assert (record.verb, record.subresource, record.decision) == ("create", "proxy", "allow")
    assert record.user is not None and record.user.groups == ("system:authenticated",)

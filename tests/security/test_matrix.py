"""Identity x path x method against a real server: 401/403/allowed as the reference says.

"allowed" means the request passed authorization: the handler answered (200, or the route-level
404/405/500 of a path that has no handler in this test) — never 401, 403 or 429.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pykubelet.auth.chain import build_authenticator
from pykubelet.auth.policy import PolicyAuthorizer, parse_policy
from pykubelet.auth.setup import build_token_authenticators
from pykubelet.auth.websocket_token import encode_token_protocol
from pykubelet.security.certs import CertPair, create_client_cert
from pykubelet.server import ServerBackends
from pykubelet.server.audit import AuditLog, AuditObserver
from tests.server.harness import Pki, StaticPods, TinyRuntime, fetch, running, settings_for

POLICY = (
    (Path(__file__).resolve().parents[2] / "examples" / "policy.yaml").read_text()
    + """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: stats}
rules: [{apiGroups: [""], resources: ["nodes/stats", "nodes/metrics"], verbs: ["get"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: stats}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: stats}
subjects: [{kind: Group, name: stats-readers}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: proxy-get}
rules: [{apiGroups: [""], resources: ["nodes/proxy"], verbs: ["get"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: proxy-get}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: proxy-get}
subjects: [{kind: User, name: getter}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pods-only}
rules: [{apiGroups: [""], resources: ["nodes/pods"], verbs: ["get"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: pods-only}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pods-only}
subjects: [{kind: User, name: pod-lister}]
"""
)

TOKENS = """\
admin-token,root,1,system:masters
stats-token,prom,2,stats-readers
getter-token,getter,3
pods-token,pod-lister,4
"""


@dataclass(frozen=True)
class Identity:
    name: str
    cert: str = ""  # "admin" | "stats" | "rogue"
    token: str = ""
    ws_token: str = ""


IDENTITIES = {
    "anonymous": Identity("anonymous"),
    "bad-token": Identity("bad-token", token="nope"),
    "admin-token": Identity("admin-token", token="admin-token"),
    "stats-token": Identity("stats-token", token="stats-token"),
    "getter-token": Identity("getter-token", token="getter-token"),
    "pods-token": Identity("pods-token", token="pods-token"),
    "admin-cert": Identity("admin-cert", cert="admin"),
    "stats-cert": Identity("stats-cert", cert="stats"),
    "rogue-cert": Identity("rogue-cert", cert="rogue"),
    "admin-ws-token": Identity("admin-ws-token", ws_token="admin-token"),
    "getter-ws-token": Identity("getter-ws-token", ws_token="getter-token"),
}

# (method, path, what a WebSocket/SPDY client would add) → needed (verb, subresources)
REQUESTS = [
    ("GET", "/pods"),
    ("GET", "/healthz"),
    ("GET", "/configz"),
    ("GET", "/runningpods/"),
    ("GET", "/stats/summary"),
    ("POST", "/stats/summary"),
    ("GET", "/metrics"),
    ("GET", "/logs/"),
    ("GET", "/containerLogs/default/web/app"),
    ("POST", "/run/default/web/app?cmd=id"),
    ("GET", "/exec/default/web/app?command=id&output=1"),  # a WebSocket exec is a GET
    ("POST", "/exec/default/web/app?command=id&output=1"),
    ("GET", "/attach/default/web/app?output=1"),
    ("GET", "/portForward/default/web?port=80"),
    ("PUT", "/pods"),
    ("DELETE", "/configz"),
]

# What each authenticated identity may do: (method, path prefix) sets, by rule.
READ_STATS = {("GET", "/stats/summary"), ("GET", "/metrics")}
GETTER = {  # get nodes/proxy: every GET that falls back to proxy, but never a streaming endpoint
    ("GET", "/pods"), ("GET", "/healthz"), ("GET", "/configz"), ("GET", "/runningpods/"),
    ("GET", "/containerLogs/default/web/app"),
}  # fmt: skip
PODS_ONLY = {("GET", "/pods"), ("GET", "/runningpods/")}


def expected(identity: str, method: str, target: str) -> str:
    """'401', '403' or 'allowed' for the Policy configuration (anonymous off)."""
    path = target.split("?")[0]
    if identity in ("anonymous", "bad-token", "rogue-cert"):
        return "401"
    if identity.startswith("admin"):
        return "allowed"
    key = (method, path)
    grants = {
        "stats-token": READ_STATS,
        "stats-cert": READ_STATS,
        "getter-token": GETTER,
        "getter-ws-token": GETTER,
        "pods-token": PODS_ONLY,
    }[identity]
    return "allowed" if key in grants else "403"


@dataclass
class Env:
    port: int
    pki: Pki
    stats_cert: CertPair
    audit_path: Path
    audit: AuditLog


def context(env: Env, ident: Identity) -> ssl.SSLContext:
    pair = {"admin": env.pki.admin, "stats": env.stats_cert, "rogue": env.pki.rogue}.get(ident.cert)
    return env.pki.client_context(pair)


def headers(ident: Identity) -> dict[str, str]:
    h = {"User-Agent": f"matrix/{ident.name}"}
    if ident.token:
        h["Authorization"] = f"Bearer {ident.token}"
    if ident.ws_token:
        h["Connection"] = "Upgrade"
        h["Upgrade"] = "websocket"
        h["Sec-WebSocket-Version"] = "13"
        h["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
        h["Sec-WebSocket-Protocol"] = f"v4.channel.k8s.io, {encode_token_protocol(ident.ws_token)}"
    return h


@pytest.fixture
async def env(pki: Pki, tmp_path: Path) -> AsyncIterator[Env]:
    token_file = tmp_path / "tokens.csv"
    token_file.write_text(TOKENS)
    os.chmod(token_file, 0o600)
    stats_cert = create_client_cert(
        str(tmp_path / "stats"), "prom-cert", ["stats-readers"], ca=pki.ca
    )
    audit_path = tmp_path / "audit" / "audit.log"
    audit = AuditLog(audit_path)
    audit.start()
    settings = settings_for(pki)
    authn = build_authenticator(
        client_ca_file=settings.client_ca_file,
        anonymous_enabled=False,
        extra=build_token_authenticators(token_file=str(token_file)),
    )
    backends = ServerBackends(
        pods=StaticPods(),
        runtime=TinyRuntime(),
        authenticator=authn,
        authorizer=PolicyAuthorizer(parse_policy(POLICY)),
        observer=AuditObserver(audit, node_name=settings.node_name),
    )
    try:
        async with running(settings, backends) as servers:
            assert servers.full_port
            yield Env(servers.full_port, pki, stats_cert, audit_path, audit)
    finally:
        audit.close()


def outcome(status: int) -> str:
    if status in (401, 403):
        return str(status)
    assert status != 429
    return "allowed"


async def test_identity_path_method_matrix(env: Env) -> None:
    mismatches = []
    sent = 0
    for ident in IDENTITIES.values():
        ctx = context(env, ident)
        for method, target in REQUESTS:
            r = await fetch(env.port, target, method=method, ctx=ctx, headers=headers(ident))
            sent += 1
            want = expected(ident.name, method, target)
            got = outcome(r.status)
            if got != want:
                mismatches.append(f"{ident.name} {method} {target}: {r.status} (want {want})")
            if got == "403":
                assert r.body.startswith(b"Forbidden (user="), r.body
                assert b"resource=nodes, subresource=" in r.body
            if got == "401":
                assert r.body == b"Unauthorized"
    assert mismatches == []
    # The audit log holds one event per request, with the right user and decision.
    deadline = time.monotonic() + 10
    while env.audit.written < sent:
        assert time.monotonic() < deadline, (env.audit.written, sent)
        await asyncio_sleep()
    events = [json.loads(x) for x in env.audit_path.read_text().splitlines()]
    assert len(events) == sent
    by_agent: dict[str, list[dict[str, object]]] = {}
    for e in events:
        by_agent.setdefault(str(e["userAgent"]), []).append(e)
    for ident in IDENTITIES.values():
        evs = by_agent[f"matrix/{ident.name}"]
        assert len(evs) == len(REQUESTS)
        for (method, target), e in zip(REQUESTS, evs, strict=True):
            want = expected(ident.name, method, target)
            assert e["requestURI"] == target
            ann = e.get("annotations", {})
            assert isinstance(ann, dict)
            if want == "401":
                assert e["user"] == {} and "authorization.k8s.io/decision" not in ann
            else:
                user = e["user"]
                assert isinstance(user, dict) and user["username"]
                assert "system:authenticated" in user["groups"]
                decision = "allow" if want == "allowed" else "forbid"
                assert ann["authorization.k8s.io/decision"] == decision, (ident.name, target)


async def asyncio_sleep() -> None:
    import asyncio

    await asyncio.sleep(0.02)


TRICKS = [
    "//pods",
    "/pods/../exec/default/web/app?command=id",
    "/%2e%2e/exec/default/web/app?command=id",
    "/pods/%2e%2e/run/default/web/app?cmd=id",
    "/exec%2Fdefault%2Fweb%2Fapp?command=id",
    "/%65xec/default/web/app?command=id",
    "/EXEC/default/web/app?command=id",
    "/Pods",
    "/pods/",
    "/exec/default/web/app/",
    "/stats/../pods",
    "/stats/summary/../../pods",
    "/stats/%2e%2e/pods",
    "/stats/%2E%2E/configz",
    "/stats/..%2fpods",
    "/./pods",
    "/stats//../pods",
    "/" + "a" * 7000,
    "/stats/" + "a/" * 3000 + "../" * 3001 + "pods",
]


async def test_path_tricks_never_bypass_authorization(env: Env) -> None:
    """A stats-only identity can reach stats; no spelling of another path gets past it."""
    stats = IDENTITIES["stats-token"]
    ctx = context(env, stats)
    ok = await fetch(env.port, "/stats/summary", ctx=ctx, headers=headers(stats))
    assert ok.status not in (401, 403)
    for method in ("GET", "POST"):
        for target in TRICKS:
            r = await fetch(env.port, target, method=method, ctx=ctx, headers=headers(stats))
            # A redirect to the clean path, a 404 before auth, a refusal — never served.
            assert r.status in (301, 400, 403, 404, 414, 431), (method, target, r.status)
            if r.status == 301:
                loc = r.headers["location"]
                follow = await fetch(env.port, loc, method=method, ctx=ctx, headers=headers(stats))
                assert follow.status in (301, 403, 404), (target, loc, follow.status)

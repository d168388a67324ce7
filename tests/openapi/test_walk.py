"""Walk the OpenAPI description against a running agent (``pykubelet run`` as the CLI builds it,
in-process so its routers can be read, on the fake runtime): every operation on every port it
names, as admin (x509), anonymously (401), as a user with no grants (403 naming the documented
verb and subresource) and as a user granted exactly the documented attribute (let through).
Every response is checked against the description; the route set of each port must equal the
description's."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from pykubelet.server.app import build_healthz_app, build_read_only_app
from tests.openapi.agent import DOC, FULL, OPS, Target, grant_user, running_agent
from tests.openapi.checker import Operation, check, resolve, validate
from tests.server.harness import Reply, fetch
from tests.streaming.spdy_client import SpdyClient

pytestmark = pytest.mark.asyncio(loop_scope="module")
# (the walk table is checked against the description in test_description.py)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    async with running_agent(tmp_path_factory.mktemp("walk")) as t:
        yield t


# ----- what to send for each operation -----


@dataclass(frozen=True)
class Call:
    status: int
    query: str = ""
    body: bytes | None = None
    upgrade: str = ""  # "", "ws:<subprotocol>", "spdy:<version>"
    headers: tuple[tuple[str, str], ...] = ()
    path_values: tuple[tuple[str, str], ...] = ()  # instead of the pod's: ("pod", "nosuch")


WALK: dict[str, list[Call]] = {
    "healthz": [Call(200, "verbose"), Call(200, "exclude=log&exclude=nosuch")],
    "healthzPing": [Call(200)],
    "healthzLog": [Call(200)],
    "healthzSyncloop": [Call(200)],
    "listPods": [Call(200), Call(406, headers=(("Accept", "text/plain"),))],
    "listPodsSlash": [Call(200)],
    "listRunningPods": [Call(200)],
    "containerLogs": [
        Call(200, "tailLines=1&timestamps=true"),
        Call(422, "tailLines=-1"),
        Call(400, "tailLines=x"),
        Call(404, path_values=(("container", "nosuch"),)),
        Call(404, path_values=(("pod", "nosuch"),)),
        Call(406, headers=(("Accept", "application/json"),)),
    ],
    "execGet": [
        Call(101, "command=echo&command=walk&output=1", upgrade="ws:v5.channel.k8s.io"),
        Call(500, "command=true&output=1"),
        Call(400, "command=true"),
    ],
    "execPost": [Call(101, "command=true&output=1", upgrade="spdy:v4.channel.k8s.io")],
    "execGetWithUid": [
        Call(101, "command=echo&command=walk&output=1", upgrade="ws:v4.channel.k8s.io")
    ],
    "execPostWithUid": [Call(101, "command=true&output=1", upgrade="spdy:v4.channel.k8s.io")],
    "attachGet": [Call(101, "output=1", upgrade="ws:v4.channel.k8s.io")],
    "attachPost": [Call(101, "output=1", upgrade="spdy:v4.channel.k8s.io")],
    "attachGetWithUid": [Call(101, "output=1", upgrade="ws:v4.channel.k8s.io")],
    "attachPostWithUid": [Call(101, "output=1", upgrade="spdy:v4.channel.k8s.io")],
    "portForwardGet": [Call(101, "port=80", upgrade="ws:v4.channel.k8s.io"), Call(500)],
    "portForwardPost": [Call(101, upgrade="spdy:portforward.k8s.io")],
    "portForwardGetWithUid": [Call(101, "port=80", upgrade="ws:v4.channel.k8s.io")],
    "portForwardPostWithUid": [Call(101, upgrade="spdy:portforward.k8s.io")],
    "runPost": [
        Call(200, "cmd=echo%20walk"),
        Call(404, "cmd=true", path_values=(("pod", "nosuch"),)),
        Call(500, "cmd=true", path_values=(("container", "nosuch"),)),
    ],
    "runPostWithUid": [
        Call(200, "cmd=echo%20walk"),
        Call(404, "cmd=true", path_values=(("uid", "not-the-uid"),)),
    ],
    "statsSummary": [Call(200), Call(200, "only_cpu_and_memory=true")],
    "statsSummaryPost": [Call(200)],
    "statsSummarySlash": [Call(200)],
    "statsSummarySlashPost": [Call(200)],
    "metrics": [Call(200)],
    "metricsResource": [Call(200)],
    "metricsCadvisor": [Call(200)],
    "metricsProbes": [Call(200)],
    "configz": [Call(200)],
    "debugFlagsVGet": [Call(406)],
    "debugFlagsV": [Call(200, body=b"2"), Call(400, body=b"x")],
    "systemLogs": [Call(200)],
    "openapi": [Call(200)],
}


def _concrete(op: Operation, pod: Mapping[str, str]) -> str:
    path = op.path
    for name, value in pod.items():
        path = path.replace("{" + name + "}", value)
    return path.replace("{path}", "")  # /logs/{path}: the directory listing


async def _request(
    t: Target,
    op: Operation,
    port: int,
    call: Call,
    *,
    admin: bool = True,
    token: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    values = {**t.pod, **dict(call.path_values)}
    target = _concrete(op, values) + (f"?{call.query}" if call.query else "")
    headers = {**dict(call.headers), **({"Authorization": f"Bearer {token}"} if token else {})}
    ctx = t.ctx(admin) if port == FULL else None
    bound = t.ports[port]
    if call.upgrade.startswith("ws:"):
        return await _websocket(t, op, bound, target, call.upgrade[3:], ctx, headers)
    if call.upgrade.startswith("spdy:"):
        assert ctx is not None
        c = await SpdyClient.connect(
            "127.0.0.1", bound, target, [call.upgrade[5:]], ctx, method=op.method.upper()
        )
        c.close()
        return c.status, _head_headers(c.head), b""
    r: Reply = await fetch(
        bound, target, method=op.method.upper(), ctx=ctx, headers=headers, body=call.body
    )
    return r.status, r.headers, r.body


def _head_headers(head: str) -> dict[str, str]:
    lines = head.split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}


async def _websocket(
    t: Target,
    op: Operation,
    port: int,
    target: str,
    protocol: str,
    ctx: ssl.SSLContext | None,
    headers: dict[str, str],
) -> tuple[int, dict[str, str], bytes]:
    url = f"https://127.0.0.1:{port}{target}"
    async with aiohttp.ClientSession() as s:
        # aiohttp spells "no context of ours" as True (its default); None is deprecated
        async with s.ws_connect(url, protocols=(protocol,), ssl=ctx or True, headers=headers) as ws:
            assert ws.protocol == protocol
            if op.id.startswith("exec"):
                await _check_exec_channels(ws, t.exec_stdout)
            elif op.id.startswith("portForward"):
                await _check_port_forward(ws)
            return 101, {}, b""


async def _check_exec_channels(ws: aiohttp.ClientWebSocketResponse, expected: bytes) -> None:
    """stdout carries the command's output; channel 3 a Status valid against the schema."""
    channels = DOC["components"]["x-kubernetes-streaming-protocols"]["websocket-remotecommand"]
    status_schema = channels["channels"][3]["schema"]
    out, status = b"", b""
    async with asyncio.timeout(10):
        async for msg in ws:
            data: bytes = msg.data
            if data[0] == 1:
                out += data[1:]
            elif data[0] == 3:
                status += data[1:]
    assert out == expected
    validate(DOC, status_schema, json.loads(status))
    assert json.loads(status)["status"] == "Success"


async def _check_port_forward(ws: aiohttp.ClientWebSocketResponse) -> None:
    """The first message on the data and error channels is the port, 2 bytes little-endian;
    bytes sent on the data channel come back from the pod's port 80 (an echo service)."""
    async with asyncio.timeout(10):
        first = [(await ws.receive()).data for _ in range(2)]
        assert sorted(first) == [b"\x00\x50\x00", b"\x01\x50\x00"]
        await ws.send_bytes(b"\x00ping")
        assert (await ws.receive()).data == b"\x00ping"


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.id)
async def test_operation_walks_as_described(target: Target, op: Operation) -> None:
    await walk_operation(target, op)


async def walk_operation(t: Target, op: Operation) -> None:
    """Every call of the walk table on every port the operation names, as admin."""
    for port in op.ports:
        if port not in t.ports:
            continue
        for call in WALK[op.id]:
            if port != FULL and call.upgrade:
                continue
            status, headers, body = await _request(t, op, port, call)
            assert status == call.status, (port, call, body[:300])
            check(DOC, op, status, headers, body)
            if op.id == "openapi":
                assert json.loads(body) == DOC


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.id)
async def test_anonymous_is_unauthorized(target: Target, op: Operation) -> None:
    status, headers, body = await _request(target, op, FULL, Call(401), admin=False)
    assert (status, body) == (401, b"Unauthorized")
    check(DOC, op, status, headers, body)


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.id)
async def test_authorization_attributes_are_the_described_ones(
    target: Target, op: Operation
) -> None:
    verb, subs = op.authz["verb"], op.authz["subresources"]
    assert op.authz["resource"] == "nodes"
    denied = await _request(target, op, FULL, Call(403), admin=False, token=target.tokens["nobody"])
    assert denied[0] == 403
    assert denied[2].decode() == (
        f"Forbidden (user=nobody, verb={verb}, resource=nodes, subresource={subs[-1]})"
    )
    check(DOC, op, *denied)
    # granted exactly the first documented subresource: let through (whatever the handler says)
    user = grant_user(verb, subs[0])
    call = WALK[op.id][0]
    plain = Call(call.status, call.query, call.body)  # no upgrade: the auth answer is the same
    allowed = await _request(target, op, FULL, plain, admin=False, token=target.tokens[user])
    assert allowed[0] not in (401, 403), (user, allowed)


def _router_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
    # aiohttp adds HEAD beside GET by itself (web.get allow_head): not a route of its own
    return {(m, p) for m, p in routes if not (m == "HEAD" and ("GET", p) in routes)}


def _described_routes(port: int) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for path, item in DOC["paths"].items():
        if port not in item["x-kubelet-ports"]:
            continue
        canonical = item.get("x-aiohttp-route", path)
        canonical = "/".join(
            seg.split(":", 1)[0] + "}" if seg.startswith("{") and ":" in seg else seg
            for seg in canonical.split("/")
        )
        if item.get("x-kubelet-any-method"):
            out.add(("*", canonical))
        else:
            out |= {(m.upper(), canonical) for m in ("get", "post", "put", "delete") if m in item}
    return out


async def test_each_port_serves_exactly_the_described_routes(target: Target) -> None:
    servers = target.agent.servers
    assert servers is not None and servers.full_app is not None
    apps = {
        FULL: servers.full_app,
        # the running 10255/10248 apps are built from the same settings and backends
        10255: build_read_only_app(servers.settings, servers.backends),
        10248: build_healthz_app(servers.settings, servers.backends),
    }
    for port, app in apps.items():
        have, described = _router_routes(app), _described_routes(port)
        assert sorted(have - described) == [], f"{port}: routes the description lacks"
        assert sorted(described - have) == [], f"{port}: described routes the server lacks"


async def test_unowned_and_unclean_paths_answer_before_authentication(target: Target) -> None:
    """What the description's info text promises for paths no operation covers."""
    port = target.ports[FULL]
    nobody = await fetch(port, "/nosuch", ctx=target.ctx(False))
    assert (nobody.status, nobody.body) == (404, b"404 page not found\n")
    validate(
        DOC,
        resolve(DOC, DOC["components"]["responses"]["MuxNotFound"])["content"][
            "text/plain; charset=utf-8"
        ]["schema"],
        nobody.body.decode(),
    )
    moved = await fetch(port, "//pods", ctx=target.ctx(False))
    assert moved.status == 301 and moved.headers["location"] == "/pods"


@pytest.mark.parametrize(
    "op", [o for o in OPS if o.item.get("x-kubelet-debugging-handler")], ids=lambda o: o.id
)
async def test_debugging_paths_answer_405_on_the_read_only_port(
    target: Target, op: Operation
) -> None:
    """What the description says of debugging handlers where they are off: 10255 always."""
    path = _concrete(op, target.pod)
    r = await fetch(target.ports[10255], path, method=op.method.upper())
    if op.path in ("/configz", "/debug/flags/v"):  # not even registered there (reference §7.5)
        assert (r.status, r.body) == (404, b"404 page not found\n")
        return
    assert r.status == 405, r.body
    check(DOC, op, r.status, r.headers, r.body)


async def test_websocket_token_scheme_authenticates_streaming(target: Target) -> None:
    """The ``websocketToken`` scheme as described: the token rides in a subprotocol next to
    the real one, is never echoed, and is authorized like any bearer token."""
    scheme = DOC["components"]["securitySchemes"]["websocketToken"]
    assert (scheme["in"], scheme["name"]) == ("header", "Sec-WebSocket-Protocol")
    op = next(o for o in OPS if o.id == "execGet")
    url = f"https://127.0.0.1:{target.ports[FULL]}{_concrete(op, target.pod)}"
    query = "?command=echo&command=walk&output=1"

    def offer(user: str) -> tuple[str, str]:
        token = target.tokens[user]
        encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
        return ("v5.channel.k8s.io", f"base64url.bearer.authorization.k8s.io.{encoded}")

    async with aiohttp.ClientSession() as s:
        allowed = grant_user("create", "proxy")
        async with s.ws_connect(url + query, protocols=offer(allowed), ssl=target.ctx(False)) as ws:
            assert ws.protocol == "v5.channel.k8s.io"
            await _check_exec_channels(ws, target.exec_stdout)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await s.ws_connect(url + query, protocols=offer("nobody"), ssl=target.ctx(False))
        assert refused.value.status == 403

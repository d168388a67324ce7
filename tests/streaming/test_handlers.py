"""Every handshake and lookup error of the streaming endpoints, with exact statuses and bodies."""

from __future__ import annotations

import aiohttp
import pytest

from tests.streaming.conftest import StreamServer
from tests.streaming.spdy_client import SpdyClient

V4 = ["v4.channel.k8s.io"]


async def _get(
    srv: StreamServer, path: str, method: str = "GET", **kw: object
) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as s:
        async with s.request(method, srv.base_url + path, ssl=srv.ws_ssl(), **kw) as r:  # type: ignore[arg-type]
            return r.status, await r.text(), dict(r.headers)


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/exec/default/p/main?command=ls&output=1", 500, "Upgrade request required\n"),
        ("/attach/default/p/main?output=1", 500, "Upgrade request required\n"),
        ("/portForward/default/p", 500, "Upgrade request required\n"),
        (
            "/exec/default/p/main?command=ls&stdout=true",
            400,
            "you must specify at least 1 of stdin, stdout, stderr",
        ),
        ("/exec/default/nosuch/main?output=1", 404, "pod does not exist"),
        ("/portForward/default/nosuch", 404, "pod does not exist"),
        ("/portForward/default/p/wrong-uid", 404, "pod not found"),
        ("/exec/default/p/gone?output=1", 500, 'container not found ("gone")'),
        ("/exec/default/p/nosuch?output=1", 500, 'container not found ("nosuch")'),
        ("/attach/default/p/gone?output=1", 500, "container gone not found in pod p_default"),
    ],
)
async def test_plain_requests(server: StreamServer, path: str, status: int, body: str) -> None:
    got_status, got_body, headers = await _get(server, path)
    assert (got_status, got_body) == (status, body)
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    if body.endswith("\n"):
        assert headers["X-Content-Type-Options"] == "nosniff"


async def test_spdy_without_protocol_version(server: StreamServer) -> None:
    c = await SpdyClient.connect(
        server.host,
        server.port,
        "/exec/default/p/main?output=1&command=ls",
        [],
        server.client_ssl(),
    )
    assert c.status == 400
    assert await c.body() == b"unable to upgrade: X-Stream-Protocol-Version is required\n"
    c.close()


async def test_spdy_without_common_version(server: StreamServer) -> None:
    c = await SpdyClient.connect(
        server.host,
        server.port,
        "/exec/default/p/main?output=1&command=ls",
        ["v9.channel.k8s.io"],
        server.client_ssl(),
    )
    assert c.status == 403
    assert c.head.count("X-Accepted-Stream-Protocol-Versions:") == 4
    assert (await c.body()).startswith(
        b"unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io]"
    )
    c.close()


async def test_upgrade_to_something_else(server: StreamServer) -> None:
    c = await SpdyClient.connect(
        server.host,
        server.port,
        "/exec/default/p/main?output=1&command=ls",
        V4,
        server.client_ssl(),
        upgrade="h2c",
    )
    assert c.status == 400
    assert (await c.body()).startswith(b"unable to upgrade: missing upgrade headers in request: ")
    c.close()


async def test_port_forward_spdy_without_version_is_upstreams_500(server: StreamServer) -> None:
    c = await SpdyClient.connect(
        server.host, server.port, "/portForward/default/p", [], server.client_ssl()
    )
    assert c.status == 500
    assert await c.body() == b"invalid upgrade response: status code 200\n"
    c.close()


async def test_websocket_unknown_subprotocol_is_empty_403(server: StreamServer) -> None:
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await s.ws_connect(
                server.base_url + "/exec/default/p/main?output=1&command=ls",
                protocols=("v9.channel.k8s.io",),
                ssl=server.ws_ssl(),
            )
    assert e.value.status == 403


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("", 'query parameter "port" is required'),
        ("?port=", 'query parameter "port" cannot be empty'),
        ("?port=0", 'port "0" must be > 0'),
        (
            "?port=web",
            'unable to parse "web" as a port: strconv.ParseUint: parsing "web": invalid syntax',
        ),
    ],
)
async def test_websocket_port_forward_port_errors(
    server: StreamServer, query: str, body: str
) -> None:
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    status, text, _ = await _get(server, "/portForward/default/p" + query, headers=headers)
    assert (status, text) == (400, body)


async def test_run_returns_raw_output_as_json_content_type(server: StreamServer) -> None:
    status, body, headers = await _get(server, "/run/default/p/main?cmd=echo hello world", "POST")
    assert (status, body, headers["Content-Type"]) == (200, "hello world\n", "application/json")
    status, body, headers = await _get(server, "/run/default/p/main?cmd=true", "POST")
    assert (status, body) == (200, "")
    assert "application/json" not in headers.get("Content-Type", "")


async def test_run_non_zero_exit_is_upstreams_500(server: StreamServer) -> None:
    status, body, _ = await _get(server, "/run/default/p/main?cmd=sh -c exit", "POST")
    assert status == 200  # "sh -c exit" is argv [sh, -c, exit]: exit 0
    status, body, _ = await _get(server, "/run/default/p/main?cmd=ls /nonexistent-dir", "POST")
    assert status == 500
    assert body.startswith("command 'ls /nonexistent-dir' exited with 2: ls: ")


async def test_run_is_post_only(server: StreamServer) -> None:
    status, _, _ = await _get(server, "/run/default/p/main?cmd=true", "GET")
    assert status == 405


async def test_accept_without_wildcard_is_406_as_go_restful(server: StreamServer) -> None:
    status, body, _ = await _get(
        server, "/exec/default/p/main?output=1", headers={"Accept": "application/json"}
    )
    assert (status, body) == (406, "406: Not Acceptable")


async def test_exec_into_a_stopped_container_is_500_before_any_upgrade(
    server: StreamServer,
) -> None:
    from pykubelet.runtime.types import ContainerState

    server.runtime.states["c1"] = ContainerState.EXITED
    status, body, _ = await _get(server, "/exec/default/p/main?command=true&output=1")
    assert (status, body) == (500, 'container not found ("main")')


async def test_unknown_websocket_subprotocol_raw_403(plain_server: StreamServer) -> None:
    import asyncio

    r, w = await asyncio.open_connection("127.0.0.1", plain_server.port)
    w.write(
        b"GET /exec/default/p/main?output=1&command=ls HTTP/1.1\r\nHost: x\r\n"
        b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Protocol: v9.channel.k8s.io\r\n\r\n"
    )
    async with asyncio.timeout(10):
        reply = await r.read()  # the server closes the connection after it
    w.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"\r\nConnection: close" in head and b"Content-Length: 0" in head
    assert b"Content-Type" not in head and body == b""


async def test_options_may_come_from_an_urlencoded_post_body(server: StreamServer) -> None:
    status, body, _ = await _get(
        server, "/exec/default/p/main", "POST", data={"output": "1", "command": "true"}
    )
    assert (status, body) == (500, "Upgrade request required\n")  # past the 400 options check
    status, body, _ = await _get(server, "/exec/default/p/main", "POST", data={"tty": "1"})
    assert (status, body) == (400, "you must specify at least 1 of stdin, stdout, stderr")


async def test_run_takes_cmd_from_an_urlencoded_body_and_annotates_what_ran(
    tls_files: tuple[str, str],
) -> None:
    """Go's FormValue reads a POST body too (upstream runs it); the audit log must then record
    the argv that ran, not the empty query (the handler's COMMAND_ANNOTATION wins there)."""
    from aiohttp import web

    from pykubelet.server import ANNOTATIONS_KEY
    from pykubelet.server.audit import COMMAND_ANNOTATION
    from tests.streaming.conftest import start_server

    seen: list[dict[str, str]] = []

    @web.middleware
    async def front_door(request: web.Request, handler: object) -> web.StreamResponse:
        notes: dict[str, str] = {}
        request[ANNOTATIONS_KEY] = notes
        seen.append(notes)
        return await handler(request)  # type: ignore[operator,no-any-return]

    runner, srv = await start_server(tls_files, middlewares=(front_door,))
    try:
        status, body, _ = await _get(
            srv, "/run/default/p/main", "POST", data={"cmd": "echo from the body"}
        )
        assert (status, body) == (200, "from the body\n")
        assert seen[-1][COMMAND_ANNOTATION] == '["echo", "from", "the", "body"]'
        status, body, _ = await _get(
            srv, "/run/default/p/main?cmd=echo+q", "POST", data={"cmd": "x"}
        )
        assert (status, body) == (200, "q\n")  # the query comes first, as FormValue
        assert seen[-1][COMMAND_ANNOTATION] == '["echo", "q"]'
    finally:
        await runner.cleanup()


async def test_head_on_stream_endpoints_is_405(server: StreamServer) -> None:
    for path in ("/exec/default/p/main?command=true", "/portForward/default/p"):
        status, _, _ = await _get(server, path, "HEAD")
        assert status == 405, path

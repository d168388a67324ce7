"""Exec and attach over WebSocket with aiohttp's client: every subprotocol, v5 CLOSE, tty rules."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp

from tests.streaming.conftest import StreamServer


async def _session(
    srv: StreamServer, path: str, protocols: tuple[str, ...], send: list[bytes | str]
) -> tuple[list[bytes | str], str | None, dict[str, str]]:
    got: list[bytes | str] = []
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(srv.base_url + path, protocols=protocols, ssl=srv.ws_ssl()) as ws:
            for message in send:
                if isinstance(message, str):
                    await ws.send_str(message)
                else:
                    await ws.send_bytes(message)
            async with asyncio.timeout(20):
                async for msg in ws:
                    got.append(msg.data)
            return got, ws.protocol, dict(ws._response.headers)


async def test_v4_binary_first_message_output_and_status(server: StreamServer) -> None:
    got, proto, _ = await _session(
        server,
        "/exec/default/p/main?command=sh&command=-c&command=echo+out;echo+err+>%262;exit+2&output=1&error=1",
        ("v4.channel.k8s.io",),
        [],
    )
    assert proto == "v4.channel.k8s.io"
    assert got[0] == b"\x01"  # empty message on the lowest writable channel
    assert b"\x01out\n" in got and b"\x02err\n" in got
    status = json.loads(got[-1][1:])
    assert got[-1][0] == 3 and status["reason"] == "NonZeroExitCode"


async def test_base64_text_frames(server: StreamServer) -> None:
    send: list[bytes | str] = ["0" + base64.b64encode(b"abc").decode()]
    got, proto, _ = await _session(
        server,
        "/exec/default/p/main?command=head&command=-c3&input=1&output=1",
        ("v4.base64.channel.k8s.io",),
        send,
    )
    assert proto == "v4.base64.channel.k8s.io"
    assert got[0] == "1"
    assert "1" + base64.b64encode(b"abc").decode() in got
    assert got[-1] == "3" + base64.b64encode(b'{"metadata":{},"status":"Success"}').decode()


async def test_no_subprotocol_is_legacy_with_silent_success(server: StreamServer) -> None:
    got, _, headers = await _session(
        server, "/exec/default/p/main?command=echo&command=x&error=1", (), []
    )
    assert headers.get("Sec-WebSocket-Protocol") == ""
    assert got == [b"\x02"]  # stderr first (no stdout requested); nothing on channel 3


async def test_v5_close_half_closes_stdin(server: StreamServer) -> None:
    got, proto, _ = await _session(
        server,
        "/exec/default/p/main?command=wc&command=-c&input=1&output=1",
        ("v5.channel.k8s.io",),
        [b"\x00hello", b"\xff\x00"],
    )
    assert proto == "v5.channel.k8s.io"
    assert b"".join(m[1:] for m in got if isinstance(m, bytes) and m[:1] == b"\x01").strip() == b"5"
    assert got[-1] == b'\x03{"metadata":{},"status":"Success"}'


async def test_tty_drops_stderr(server: StreamServer) -> None:
    got, _, _ = await _session(
        server,
        "/exec/default/tty/main?command=sh&command=-c&command=echo+e+>%262&output=1&error=1&tty=1",
        ("v4.channel.k8s.io",),
        [],
    )
    assert not any(isinstance(m, bytes) and m[:1] == b"\x02" for m in got)
    assert b"e" in b"".join(m[1:] for m in got if isinstance(m, bytes) and m[:1] == b"\x01")


async def test_attach_reaches_the_container_stdio(server: StreamServer) -> None:
    got, _, _ = await _session(
        server,
        "/attach/default/p/main?input=1&output=1",
        ("v5.channel.k8s.io",),
        [b"\x00attached", b"\xff\x00"],
    )
    assert b"\x01attached" in got


async def test_idle_websocket_is_closed_and_the_command_stopped(tls_files: tuple[str, str]) -> None:
    from tests.streaming.conftest import start_server

    runner, srv = await start_server(tls_files, idle_timeout_s=0.5)
    try:
        got, _, _ = await _session(
            srv,
            "/exec/default/p/main?command=sleep&command=60&output=1",
            ("v4.channel.k8s.io",),
            [],
        )
        assert got == [b"\x01"]  # closed by the server without a status
        async with asyncio.timeout(10):
            while srv.runtime.running:  # noqa: ASYNC110 - a bounded wait on the runtime
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()


async def test_client_vanishing_mid_output_stops_the_command(server: StreamServer) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(
            server.base_url + "/exec/default/p/main?command=yes&output=1",
            protocols=("v4.channel.k8s.io",),
            ssl=server.ws_ssl(),
        )
        got = 0
        async with asyncio.timeout(20):
            while got < 1 << 20:
                got += len(await ws.receive_bytes())
        assert ws._response.connection is not None
        ws._response.connection.transport.abort()  # type: ignore[union-attr]
    async with asyncio.timeout(10):
        while server.runtime.running:  # noqa: ASYNC110 - a bounded wait on the runtime
            await asyncio.sleep(0.05)

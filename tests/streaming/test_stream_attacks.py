"""Authenticated streams that could stall the node (issue #14, holes 10-12), against the real
KubeletServers over TLS on 127.0.0.1 with real local processes. Time limits here are hang
guards (the old code took tens of seconds), never performance assertions."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import ssl
import struct
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from pykubelet.server import KubeletServers, ServerBackends
from pykubelet.server.streams import StreamBackend, stream_routes
from pykubelet.server.streams.stream_adapter import SpdyConnection
from pykubelet.streaming import RemoteProtocolError, ResizeDecoder, StreamReset
from tests.server.harness import Pki, fetch, make_pki, running, settings_for, wait_until
from tests.streaming.local_runtime import LocalRuntime, StaticPods, make_pod
from tests.streaming.spdy_client import SpdyClient


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def node(pki: Pki) -> AsyncIterator[tuple[KubeletServers, LocalRuntime]]:
    runtime = LocalRuntime()
    pods = StaticPods([make_pod(containers=(("main", "local://c1", False),
                                            ("tty", "local://c1", True)))])  # fmt: skip
    stream = StreamBackend(pods=pods, runtime=runtime, streaming=runtime)  # type: ignore[arg-type]
    backends = ServerBackends(
        pods=pods,
        runtime=runtime,  # type: ignore[arg-type]
        extra_debug_routes=stream_routes(stream),
    )
    async with running(settings_for(pki), backends) as servers:
        yield servers, runtime


def test_resize_decoder_is_linear_and_capped() -> None:
    many = b'{"Width":80,"Height":24}' * 200_000  # 4.8 MB of valid objects in one message
    with pytest.raises(RemoteProtocolError):
        ResizeDecoder().feed(many)
    with pytest.raises(RemoteProtocolError):
        ResizeDecoder().feed(b'{"Width":80,"Height":24,"pad":"' + b"x" * 2000 + b'"}')
    dec = ResizeDecoder()
    assert dec.feed(b'{"Width":80,') == []
    assert dec.feed(b'"Height":24}  {"width":1,"height":2}') == [(80, 24), (1, 2)]
    with pytest.raises(RemoteProtocolError):
        ResizeDecoder().feed(b'{"a":' * 5000)  # deep nesting: an error, not a RecursionError


async def test_huge_resize_message_does_not_freeze_the_node(
    node: tuple[KubeletServers, LocalRuntime], pki: Pki
) -> None:
    """Hole 10: one 4 MiB resize message froze the event loop (and /healthz) for 11.9 s."""
    servers, runtime = node
    port = servers.full_port
    assert port is not None
    admin = pki.client_context(pki.admin)
    url = f"https://127.0.0.1:{port}/exec/default/p/tty?command=cat&input=1&output=1&tty=1"
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url, protocols=("v4.channel.k8s.io",), ssl=admin) as ws:
            attack = b'{"Width":80,"Height":24}' * 350_000  # 8.4 MB of resize objects
            # Hang guard, not a speed check: the server shares this event loop, so a frozen
            # loop shows only on the wall clock (the quadratic decoder froze it for ~50 s).
            t0 = time.monotonic()
            await ws.send_bytes(b"\x04" + attack)
            await ws.send_bytes(b'\x04{"Width":101,"Height":33}')
            await wait_until(lambda: any(r.width == 101 for r in runtime.resizes), 60.0)
            health = await fetch(port, "/healthz", ctx=admin)
            assert health.status == 200
            assert time.monotonic() - t0 < 10.0, "the event loop froze"
            assert all(r.width in (80, 101) for r in runtime.resizes)


def _server_connections() -> list[SpdyConnection]:
    return [o for o in gc.get_objects() if isinstance(o, SpdyConnection)]


async def test_spdy_unknown_and_surplus_streams_are_refused_and_forgotten(
    node: tuple[KubeletServers, LocalRuntime], pki: Pki
) -> None:
    """Hole 11: streams were never freed after RST (600 SYN_STREAM+RST: +115 MiB) and
    unknown stream types were accepted."""
    servers, _ = node
    assert servers.full_port is not None
    c = await SpdyClient.connect(
        "127.0.0.1", servers.full_port,
        "/exec/default/p/main?command=sleep&command=30&output=1", ["v4.channel.k8s.io"],
        pki.client_context(pki.admin),
    )  # fmt: skip
    assert c.status == 101
    pump = asyncio.ensure_future(c.pump())
    try:
        c.open({"streamtype": "error"})
        c.open({"streamtype": "stdout"})
        bogus = c.open({"streamtype": "bogus", "pad": "x" * 8000})
        flood = []
        for _ in range(600):
            sid = c.open({"streamtype": "stdout", "pad": "y" * 8000})
            c.writer.write(c.session.send_rst_stream(sid))
            flood.append(sid)
        await c.writer.drain()
        async with asyncio.timeout(10):
            while bogus not in c.result.resets:
                ev = await c.events.get()
                assert not isinstance(ev, StreamReset) or ev.stream_id in (bogus, *flood)
        assert c.result.resets[bogus] == 3  # REFUSED_STREAM
        (conn,) = [x for x in _server_connections() if not x.closed.is_set()]
        assert len(conn.streams) <= 2
        assert len(conn.session._streams) <= 2
        assert conn.refused >= 601
    finally:
        c.close()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, ssl.SSLError):
            await pump


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + masked


async def test_websocket_ping_flood_is_back_pressured(
    node: tuple[KubeletServers, LocalRuntime], pki: Pki
) -> None:
    """Hole 12: PINGs were echoed without back-pressure: a client that never reads its PONGs
    made the server queue without bound (+59 MiB). Now the server stops reading."""
    servers, _ = node
    assert servers.full_port is not None
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", servers.full_port, ssl=pki.client_context(pki.admin)
    )
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /exec/default/p/main?command=sleep&command=60&output=1 HTTP/1.1\r\n"
            "Host: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    # Empty PINGs: aiohttp's reader queue counts payload bytes, so these never paused it.
    batch = _ws_frame(0x9, b"") * 40_000  # 240 KB
    sent = 0
    blocked = False
    try:
        while sent < (24 << 20):
            writer.write(batch)
            sent += len(batch)
            try:
                async with asyncio.timeout(2):
                    await writer.drain()
            except TimeoutError:
                blocked = True  # the server stopped reading: back-pressure
                break
    finally:
        writer.transport.abort()
    assert blocked, f"server kept reading {sent >> 20} MiB of PINGs whose PONGs are unread"


async def test_websocket_stdin_is_bounded_by_bytes(
    node: tuple[KubeletServers, LocalRuntime], pki: Pki
) -> None:
    """Hole 12: stdin was queued by message count (64 x 32 MiB): a command that does not read
    its stdin let a client park gigabytes in the agent. Now 4 MiB, then the socket waits."""
    servers, _ = node
    port = servers.full_port
    assert port is not None
    url = f"https://127.0.0.1:{port}/exec/default/p/main?command=sleep&command=60&input=1"
    message = b"\x00" + b"z" * (2 << 20)
    sent = 0
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(
            url, protocols=("v4.channel.k8s.io",), ssl=pki.client_context(pki.admin)
        ) as ws:
            try:
                for _ in range(24):  # at most 48 MiB
                    async with asyncio.timeout(3):
                        await ws.send_bytes(message)
                    sent += len(message)
            except TimeoutError:
                pass  # the server stopped reading: back-pressure
            else:
                pytest.fail(f"the server took {sent >> 20} MiB of unread stdin")
    assert sent <= (24 << 20)

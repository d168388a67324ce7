"""The streaming routes inside the real KubeletServers: x509 auth first, then a SPDY hijack and
a WebSocket session through the front door; debug-disabled nodes answer 405."""

from __future__ import annotations

import asyncio
import json
import ssl

import aiohttp
import pytest

from pykubelet.server import RequestObserver, RequestRecord, ServerBackends
from pykubelet.server.streams import StreamBackend, stream_routes
from tests.server.harness import Pki, fetch, make_pki, running, settings_for
from tests.streaming.local_runtime import LocalRuntime, StaticPods, make_pod
from tests.streaming.spdy_client import SpdyClient


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _backends(runtime: LocalRuntime, observer: RequestObserver | None = None) -> ServerBackends:
    pods = StaticPods([make_pod()])
    stream = StreamBackend(pods=pods, runtime=runtime, streaming=runtime)  # type: ignore[arg-type]
    return ServerBackends(
        pods=pods,
        runtime=runtime,  # type: ignore[arg-type]
        extra_debug_routes=stream_routes(stream),
        observer=observer,
    )


class _Records:
    def __init__(self) -> None:
        self.done: list[RequestRecord] = []

    def observe(self, record: RequestRecord) -> None:
        if record.stage == "ResponseComplete":
            self.done.append(record)


async def test_a_websocket_exec_ended_by_a_hang_up_is_logged_101(pki: Pki) -> None:
    """A client that drops the connection after the status, without a close frame, ended a
    finished session: 101 in the request log and audit trail, not 499 (an abort)."""
    records = _Records()
    async with running(settings_for(pki), _backends(LocalRuntime(), records)) as servers:
        assert servers.full_port is not None
        async with aiohttp.ClientSession() as s:
            ws = await s.ws_connect(
                f"https://127.0.0.1:{servers.full_port}/exec/default/p/main?command=true&output=1",
                protocols=("v4.channel.k8s.io",),
                ssl=pki.client_context(pki.admin),
            )
            while (msg := await ws.receive_bytes(timeout=20))[:1] != b"\x03":
                pass  # up to the status on channel 3
            assert json.loads(msg[1:])["status"] == "Success"
            assert ws._response.connection is not None
            ws._response.connection.transport.abort()  # type: ignore[union-attr]  # no close frame
            async with asyncio.timeout(20):
                while not records.done:  # noqa: ASYNC110 - a bounded wait on the server
                    await asyncio.sleep(0.02)
    assert [(r.path, r.status) for r in records.done] == [("/exec/default/p/main", 101)]


async def test_exec_behind_auth_on_both_transports(pki: Pki) -> None:
    runtime = LocalRuntime()
    async with running(settings_for(pki), _backends(runtime)) as servers:
        port = servers.full_port
        assert port is not None
        anonymous = await fetch(
            port, "/exec/default/p/main?command=true&output=1", ctx=pki.client_context(None)
        )
        assert (anonymous.status, anonymous.body) == (401, b"Unauthorized")
        admin_ctx: ssl.SSLContext = pki.client_context(pki.admin)
        c = await SpdyClient.connect(
            "127.0.0.1",
            port,
            "/exec/default/p/main?command=echo&command=spdy&output=1",
            ["v4.channel.k8s.io"],
            admin_ctx,
        )
        assert c.status == 101, c.head
        err, out = c.open({"streamtype": "error"}), c.open({"streamtype": "stdout"})
        async with asyncio.timeout(20):
            result = await c.pump()
        assert result.data[out] == b"spdy\n"
        assert json.loads(result.data[err])["status"] == "Success"
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(
                f"https://127.0.0.1:{port}/exec/default/p/main?command=echo&command=ws&output=1",
                protocols=("v4.channel.k8s.io",),
                ssl=admin_ctx,
            ) as ws:
                got = [m.data async for m in ws]
        assert b"\x01ws\n" in got


async def test_streaming_is_405_when_debugging_handlers_are_off(pki: Pki) -> None:
    settings = settings_for(pki, enable_debugging_handlers=False)
    async with running(settings, _backends(LocalRuntime())) as servers:
        assert servers.full_port is not None
        reply = await fetch(
            servers.full_port,
            "/exec/default/p/main?command=true&output=1",
            ctx=pki.client_context(pki.admin),
        )
    assert (reply.status, reply.body) == (405, b"Debug endpoints are disabled.\n")

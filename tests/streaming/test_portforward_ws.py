"""Port-forward over WebSocket: channel pairs, the 2-byte port prefix, echo via a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.streaming.conftest import StreamServer


@pytest.fixture
async def echo_ports() -> AsyncIterator[list[int]]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    servers = [await asyncio.start_server(echo, "127.0.0.1", 0) for _ in range(2)]
    try:
        yield [s.sockets[0].getsockname()[1] for s in servers]
    finally:
        for s in servers:
            s.close()
            await s.wait_closed()


async def test_two_ports_with_prefixes_and_echo(
    server: StreamServer, echo_ports: list[int]
) -> None:
    a, b = echo_ports
    url = f"{server.base_url}/portForward/default/p?port={a},{b}"
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url, protocols=("v4.channel.k8s.io",), ssl=server.ws_ssl()) as ws:
            prefixes = [await ws.receive_bytes() for _ in range(4)]
            assert sorted(prefixes) == sorted(
                [
                    bytes([ch]) + p.to_bytes(2, "little")
                    for ch, p in ((0, a), (1, a), (2, b), (3, b))
                ]
            )
            await ws.send_bytes(b"\x00to-a")
            await ws.send_bytes(b"\x02to-b")
            seen: dict[int, bytes] = {0: b"", 2: b""}
            async with asyncio.timeout(10):
                while seen != {0: b"to-a", 2: b"to-b"}:
                    msg = await ws.receive_bytes()
                    seen[msg[0]] += msg[1:]


async def test_unreachable_port_reports_on_the_error_channel(server: StreamServer) -> None:
    from tests.conftest import free_port

    port = free_port()
    url = f"{server.base_url}/portForward/default/p?port={port}"
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url, protocols=("v4.channel.k8s.io",), ssl=server.ws_ssl()) as ws:
            got = [await ws.receive_bytes() for _ in range(3)]
    error = got[2]
    assert error[0] == 1
    assert error[1:].startswith(
        f"error forwarding port {port} to pod sandbox-1, uid uid-1: ".encode()
    )


def _python_client_forward(srv: StreamServer, port: int) -> bytes:
    from kubernetes.client import Configuration
    from kubernetes.stream.ws_client import portforward_call

    cfg = Configuration()
    cfg.host = srv.base_url
    cfg.ssl_ca_cert = srv.ca_file
    # The client reads ``ports`` (the API server's name) and keeps every parameter in the URL;
    # the kubelet reads ``port``. Giving both drives the unmodified client straight at us.
    url = f"{srv.base_url}/portForward/default/p?port={port}&ports={port}"
    pf = portforward_call(cfg, "GET", url)
    sock = pf.socket(port)
    sock.settimeout(10)
    sock.sendall(b"through the python client")
    got = b""
    while len(got) < len(b"through the python client"):
        chunk = sock.recv(1024)
        if not chunk:
            break
        got += chunk
    pf.close()
    return got


async def test_official_python_client_port_forward(
    server: StreamServer, echo_ports: list[int]
) -> None:
    got = await asyncio.to_thread(_python_client_forward, server, echo_ports[0])
    assert got == b"through the python client"


async def test_spdy_tunnelled_in_websocket(server: StreamServer, echo_ports: list[int]) -> None:
    """The 1.30+ transport (``SPDY/3.1+portforward.k8s.io``): SPDY frames in binary messages."""
    from pykubelet.streaming import DataReceived, Role, SpdySession

    client = SpdySession(Role.CLIENT)
    url = f"{server.base_url}/portForward/default/p"
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(
            url, protocols=("SPDY/3.1+portforward.k8s.io",), ssl=server.ws_ssl()
        ) as ws:
            assert ws.protocol == "SPDY/3.1+portforward.k8s.io"
            datas = []
            for rid, port in enumerate(echo_ports):
                common = (("port", str(port)), ("requestid", str(rid)))
                _, err = client.send_syn_stream((*common, ("streamtype", "error")), fin=True)
                sid, data = client.send_syn_stream((*common, ("streamtype", "data")))
                await ws.send_bytes(err + data)
                datas.append(sid)
            for i, sid in enumerate(datas):
                await ws.send_bytes(client.send_data(sid, f"tunnel-{i}".encode()))
            echoed: dict[int, bytes] = {sid: b"" for sid in datas}
            async with asyncio.timeout(10):
                while echoed != {sid: f"tunnel-{i}".encode() for i, sid in enumerate(datas)}:
                    for ev in client.receive_data(await ws.receive_bytes()):
                        if isinstance(ev, DataReceived) and ev.stream_id in echoed:
                            echoed[ev.stream_id] += ev.data

"""The SPDY exec and port-forward streams kubectl opens, sent by npm spdy-transport (not kubectl)
over real TLS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from tests.streaming.conftest import StreamServer
from tests.streaming.node_client import run_spdy_client

V4 = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]


def _exec_streams(stdin: str) -> list[dict[str, object]]:
    return [
        {"name": "error", "headers": {"streamtype": "error"}},
        {"name": "stdin", "headers": {"streamtype": "stdin"}, "write": stdin, "end": True},
        {"name": "stdout", "headers": {"streamtype": "stdout"}},
        {"name": "stderr", "headers": {"streamtype": "stderr"}},
    ]


async def test_spdy_transport_exec_streams_get_output_and_v4_status(server: StreamServer) -> None:
    path = "/exec/default/p/main?command=sh&command=-c&command=cat;echo+err+>%262;exit+7"
    path += "&input=1&output=1&error=1"
    result = await run_spdy_client(
        {
            "port": server.port,
            "ca": server.ca_file,
            "path": path,
            "versions": V4,
            "streams": _exec_streams("hello from stdin\n"),
        }
    )
    assert result["status"] == 101, result
    assert "X-Stream-Protocol-Version: v4.channel.k8s.io" in result["head"]
    streams = result["streams"]
    assert streams["stdout"] == "hello from stdin\n"
    assert streams["stderr"] == "err\n"
    status = json.loads(streams["error"])
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]


async def test_spdy_transport_exec_success_v4_status_and_v2_silence(server: StreamServer) -> None:
    base = "/exec/default/p/main?command=true&input=1&output=1&error=1"
    result = await run_spdy_client(
        {
            "port": server.port,
            "ca": server.ca_file,
            "path": base,
            "versions": V4,
            "streams": _exec_streams(""),
        }
    )
    assert result["streams"]["error"] == '{"metadata":{},"status":"Success"}'
    result = await run_spdy_client(
        {
            "port": server.port,
            "ca": server.ca_file,
            "path": base,
            "versions": ["v2.channel.k8s.io"],
            "streams": _exec_streams(""),
        }
    )
    assert "X-Stream-Protocol-Version: v2.channel.k8s.io" in result["head"]
    assert result["streams"]["error"] == ""


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    srv = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        await srv.wait_closed()


async def test_port_forward_over_spdy_pairs_concurrent_requests(
    server: StreamServer, echo_port: int
) -> None:
    streams = []
    for rid in range(3):
        common = {"port": str(echo_port), "requestid": str(rid)}
        streams.append(
            {"name": f"err{rid}", "headers": {**common, "streamtype": "error"}, "end": True}
        )
        streams.append(
            {
                "name": f"data{rid}",
                "headers": {**common, "streamtype": "data"},
                "write": f"ping-{rid}",
                "end": True,
            }
        )
    result = await run_spdy_client(
        {
            "port": server.port,
            "ca": server.ca_file,
            "path": "/portForward/default/p",
            "versions": ["portforward.k8s.io"],
            "streams": streams,
            "closeAfterEnds": True,
        }
    )
    assert result["status"] == 101, result
    for rid in range(3):
        assert result["streams"][f"data{rid}"] == f"ping-{rid}"
        assert result["streams"][f"err{rid}"] == ""

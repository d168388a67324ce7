"""The official kubernetes Python client's WebSocket streaming, unmodified, against /exec."""

from __future__ import annotations

import asyncio
import time

from kubernetes.client import Configuration
from kubernetes.stream.ws_client import ERROR_CHANNEL, STDOUT_CHANNEL, WSClient

from tests.streaming.conftest import StreamServer


def _client(srv: StreamServer, path: str) -> WSClient:
    cfg = Configuration()
    cfg.host = srv.base_url
    cfg.ssl_ca_cert = srv.ca_file
    cfg.verify_ssl = True
    url = srv.base_url.replace("https", "wss") + path
    return WSClient(cfg, url, headers=None, capture_all=True)


def _run_command(srv: StreamServer, argv: list[str]) -> tuple[str, str, int | None]:
    q = "&".join(f"command={a}" for a in argv)
    ws = _client(srv, f"/exec/default/p/main?{q}&output=1&error=1")
    ws.run_forever(timeout=20)
    return ws.read_stdout(), ws.read_stderr(), ws.returncode


async def test_python_client_runs_a_command_and_reads_exit_codes(server: StreamServer) -> None:
    out, err, rc = await asyncio.to_thread(
        _run_command, server, ["sh", "-c", "echo%20hi;echo%20oops%3E%262"]
    )
    assert (out, err, rc) == ("hi\n", "oops\n", 0)
    out, err, rc = await asyncio.to_thread(_run_command, server, ["sh", "-c", "exit%203"])
    assert rc == 3


def _interactive(srv: StreamServer) -> tuple[str, str]:
    ws = _client(srv, "/exec/default/tty/main?command=sh&input=1&output=1&tty=1")
    ws.write_channel(4, '{"Width":101,"Height":33}')
    deadline = time.monotonic() + 10
    while not srv.runtime.resizes and time.monotonic() < deadline:  # order resize before stdin
        ws.update(timeout=0.05)
    ws.write_stdin("stty size; echo marker-$((6*7)); exit 5\n")
    deadline = time.monotonic() + 20
    out = ""
    while ws.is_open() and time.monotonic() < deadline:
        ws.update(timeout=1)
        out += ws.read_channel(STDOUT_CHANNEL)
    return out, ws.read_channel(ERROR_CHANNEL)


async def test_python_client_interactive_shell_with_tty_and_resize(server: StreamServer) -> None:
    out, status = await asyncio.to_thread(_interactive, server)
    assert "marker-42" in out
    assert "33 101" in out
    assert '"reason":"NonZeroExitCode"' in status
    assert '{"reason":"ExitCode","message":"5"}' in status

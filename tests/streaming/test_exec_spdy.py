"""Exec over SPDY/3.1 with our client-role session: stdio, tty resize, endings and timeouts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykubelet.streaming import PingReceived, RstStatus
from tests.streaming.conftest import StreamServer, start_server
from tests.streaming.local_runtime import LocalRuntime
from tests.streaming.spdy_client import SpdyClient

V4 = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]


async def _exec(srv: StreamServer, query: str, versions: list[str] = V4) -> SpdyClient:
    c = await SpdyClient.connect(
        srv.host, srv.port, "/exec/default/" + query, versions, srv.client_ssl()
    )
    assert c.status == 101, c.head
    return c


async def test_stdin_to_stdout_and_upstream_ending(server: StreamServer) -> None:
    c = await _exec(server, "p/main?command=cat&input=1&output=1&error=1")
    err, stdin, out, serr = (
        c.open({"streamtype": t}) for t in ("error", "stdin", "stdout", "stderr")
    )
    pump = asyncio.ensure_future(c.pump())
    payload = bytes(range(256)) * 1000
    await c.send(stdin, payload, fin=True)
    async with asyncio.timeout(20):
        result = await pump
    assert result.data[out] == payload
    assert result.data[serr] == b""
    assert json.loads(result.data[err]) == {"metadata": {}, "status": "Success"}
    assert {out, serr, err} <= result.fin
    assert result.resets.get(stdin) == RstStatus.CANCEL
    assert result.goaway


async def test_tty_resize_and_exit_code(server: StreamServer) -> None:
    c = await _exec(server, "tty/main?command=sh&input=1&output=1&error=1&tty=1")
    err, stdin, out, resize = (
        c.open({"streamtype": t}) for t in ("error", "stdin", "stdout", "resize")
    )
    pump = asyncio.ensure_future(c.pump())
    await c.send(resize, b'{"Width":120,"Height":40}')
    async with asyncio.timeout(10):  # resize and stdin race inside the runtime; order them
        while not server.runtime.resizes:  # noqa: ASYNC110 - a bounded wait on the runtime
            await asyncio.sleep(0.01)
    await c.send(stdin, b"stty size; exit 4\n")
    async with asyncio.timeout(20):
        result = await pump
    assert b"40 120" in result.data[out]
    status = json.loads(result.data[err])
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "4"}]
    assert server.runtime.resizes[0].width == 120


async def _wait_for_file(path: Path) -> None:
    async with asyncio.timeout(20):
        while not await asyncio.to_thread(path.exists):  # noqa: ASYNC110 - bounded
            await asyncio.sleep(0.01)


async def test_the_command_starts_before_the_client_has_made_its_streams(
    server: StreamServer, tmp_path: Path
) -> None:
    """Like kubectl through the API server, the client creates its streams only after the 101
    (round trips); the command has started before, and its output (more than a pipe holds)
    waits for them and arrives whole and in order."""
    started = tmp_path / "started"
    c = await _exec(
        server, f"p/main?command=sh&command=-c&command=touch+{started};seq+1+60000&output=1"
    )
    await _wait_for_file(started)  # no stream yet
    err, out = c.open({"streamtype": "error"}), c.open({"streamtype": "stdout"})
    async with asyncio.timeout(20):
        result = await c.pump()
    expected = "".join(f"{i}\n" for i in range(1, 60001)).encode()
    assert result.data[out] == expected
    assert json.loads(result.data[err]) == {"metadata": {}, "status": "Success"}


async def test_a_client_gone_before_its_streams_stops_the_started_command(
    server: StreamServer, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    c = await _exec(
        server, f"p/main?command=sh&command=-c&command=touch+{started};exec+sleep+60&output=1"
    )
    await _wait_for_file(started)
    async with asyncio.timeout(10):  # the runtime records it once its spawn has returned
        while not server.runtime.running:  # noqa: ASYNC110 - a bounded wait on the runtime
            await asyncio.sleep(0.01)
    c.writer.transport.abort()
    async with asyncio.timeout(10):
        while server.runtime.running:  # noqa: ASYNC110 - a bounded wait on the runtime
            await asyncio.sleep(0.05)


async def test_ping_is_echoed(server: StreamServer) -> None:
    c = await _exec(server, "p/main?command=sleep&command=5&output=1")
    c.open({"streamtype": "error"})
    pump = asyncio.ensure_future(c.pump())
    c.writer.write(c.session.send_ping())
    async with asyncio.timeout(10):
        while not isinstance(ev := await c.events.get(), PingReceived):
            pass
    assert ev == PingReceived(ping_id=1, is_echo=True)
    c.close()
    pump.cancel()


@pytest.fixture
async def quick_server(tls_files: tuple[str, str]) -> AsyncIterator[StreamServer]:
    runner, srv = await start_server(tls_files, idle_timeout_s=0.5, creation_timeout_s=0.5)
    try:
        yield srv
    finally:
        await runner.cleanup()


async def test_missing_streams_time_out_and_drop_the_connection(quick_server: StreamServer) -> None:
    c = await _exec(quick_server, "p/main?command=true&input=1&output=1")
    err = c.open({"streamtype": "error"})
    c.open({"streamtype": "bogus"})  # unknown types are not counted
    async with asyncio.timeout(10):
        result = await c.pump()
    assert result.data[err] == b""  # the session ended before its streams: no status
    assert not result.goaway


async def test_idle_connection_is_closed_and_the_command_stopped(
    quick_server: StreamServer,
) -> None:
    c = await _exec(quick_server, "p/main?command=sleep&command=60&output=1")
    c.open({"streamtype": "error"})
    c.open({"streamtype": "stdout"})
    async with asyncio.timeout(10):
        await c.pump()
    async with asyncio.timeout(10):
        while quick_server.runtime.running:  # noqa: ASYNC110 - a bounded wait on the runtime
            await asyncio.sleep(0.05)


async def test_v1_writes_no_status_on_success_and_text_on_failure(server: StreamServer) -> None:
    for cmd, expected in (
        ("true", b""),
        ("false", b"command terminated with non-zero exit code: "),
    ):
        c = await _exec(server, f"p/main?command={cmd}&output=1", ["channel.k8s.io"])
        err = c.open({"streamtype": "error"})
        c.open({"streamtype": "stdout"})
        async with asyncio.timeout(10):
            result = await c.pump()
        assert result.data[err].startswith(expected)
        assert bool(result.data[err]) == bool(expected)


async def test_recorder_sees_tty_output_and_resizes(
    tls_files: tuple[str, str], tmp_path: Path
) -> None:
    records: list[tuple[str, object]] = []

    class Recorder:
        def output(self, data: bytes) -> None:
            records.append(("o", data))

        def input(self, data: bytes) -> None:
            records.append(("i", data))

        def resize(self, width: int, height: int) -> None:
            records.append(("r", (width, height)))

        def close(self) -> None:
            records.append(("c", None))

    def factory(audit_id: str, width: int, height: int) -> Recorder:
        records.append(("start", (audit_id, width, height)))
        return Recorder()

    runner, srv = await start_server(tls_files, runtime=LocalRuntime(), recorder_factory=factory)
    try:
        c = await _exec(
            srv, "tty/main?command=sh&command=-c&command=echo+recorded&output=1&tty=1&input=1"
        )
        for t in ("error", "stdin", "stdout", "resize"):
            c.open({"streamtype": t})
        await c.send(7, b'{"Width":90,"Height":30}')
        async with asyncio.timeout(20):
            await c.pump()
    finally:
        await runner.cleanup()
    assert records[0][0] == "start" and records[-1] == ("c", None)
    assert b"recorded" in b"".join(d for k, d in records if k == "o" and isinstance(d, bytes))


async def test_recorder_opener_shape_and_audit_id(tls_files: tuple[str, str]) -> None:
    """The security helper's factory shape: ``open(audit_id, *, width, height, command)``."""
    opened: list[tuple[str, int, int, tuple[str, ...]]] = []
    outputs: list[bytes] = []

    class Recorder:
        def output(self, data: bytes) -> None:
            outputs.append(data)

        def input(self, data: bytes) -> None:
            pass

        def resize(self, width: int, height: int) -> None:
            pass

        def close(self) -> None:
            pass

    class Opener:
        def open(
            self,
            audit_id: str,
            *,
            width: int = 80,
            height: int = 24,
            command: tuple[str, ...] = (),
            title: str = "",
        ) -> Recorder:
            opened.append((audit_id, width, height, tuple(command)))
            return Recorder()

    runner, srv = await start_server(
        tls_files, recorder_factory=Opener(), audit_id_of=lambda request: "audit-123"
    )
    try:
        c = await _exec(srv, "p/main?command=echo&command=hi&output=1")
        c.open({"streamtype": "error"})
        c.open({"streamtype": "stdout"})
        async with asyncio.timeout(20):
            await c.pump()
    finally:
        await runner.cleanup()
    assert opened == [("audit-123", 80, 24, ("echo", "hi"))]
    assert b"".join(outputs) == b"hi\n"


async def test_client_vanishing_mid_output_stops_the_command(server: StreamServer) -> None:
    c = await _exec(server, "p/main?command=yes&output=1")
    c.open({"streamtype": "error"})
    out = c.open({"streamtype": "stdout"})
    got = 0
    async with asyncio.timeout(20):
        while got < 1 << 20:  # the command is streaming: take a megabyte, then vanish
            for ev in c.session.receive_data(await c.reader.read(65536)):
                if getattr(ev, "stream_id", None) == out:
                    got += len(getattr(ev, "data", b""))
    c.writer.transport.abort()
    async with asyncio.timeout(10):
        while server.runtime.running:  # noqa: ASYNC110 - a bounded wait on the runtime
            await asyncio.sleep(0.05)


async def test_duplicate_streams_without_an_error_stream_drop_the_connection(
    server: StreamServer,
) -> None:
    c = await _exec(server, "p/main?command=true&output=1")
    c.open({"streamtype": "stdout"})
    c.open({"streamtype": "stdout"})  # counted like upstream, but no error stream for a status
    async with asyncio.timeout(10):
        result = await c.pump()
    assert not result.goaway and not server.runtime.running

"""Client of the runtime's streaming server (the URLs CRI Exec/Attach/PortForward return).

pykubelet never redirects a client to these URLs (CVE-2018-1002105 class): the kubelet API
terminates the client's stream, and this module is a SPDY/3.1 client of containerd's server for
the same session, as the Go kubelet's proxy is. SPDY rather than WebSocket because only SPDY can
half-close stdin (``kubectl exec -i … < file`` must see EOF). Framing is ``streaming.spdy``'s
sans-IO session; this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

from pykubelet.runtime.errors import RuntimeFailure
from pykubelet.runtime.types import StreamIO, TerminalSize
from pykubelet.streaming.spdy import (
    DataReceived,
    PingReceived,
    Role,
    SessionClosed,
    SpdySession,
    StreamOpened,
    StreamRejected,
    StreamReset,
)

__all__ = ["CriPortConnection", "parse_exit_status", "run_attach", "run_exec"]

EXEC_PROTOCOL = "v4.channel.k8s.io"
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
_MAX_HEADER_BYTES = 64 * 1024


class _SpdyClient:
    """One upgraded connection: streams we open, and a queue of received chunks per stream
    (``None`` marks its end)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._session = SpdySession(Role.CLIENT)
        self._queues: dict[int, asyncio.Queue[bytes | None]] = {}
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str, protocol: str) -> _SpdyClient:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise RuntimeFailure(f"unsupported streaming URL from the runtime: {url!r}")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        try:
            writer.write(
                (
                    f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                    "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                    f"X-Stream-Protocol-Version: {protocol}\r\nContent-Length: 0\r\n\r\n"
                ).encode("ascii")
            )
            head = await reader.readuntil(b"\r\n\r\n")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            writer.close()
            raise RuntimeFailure(f"runtime streaming server: {e}") from None
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        if " 101 " not in status + " ":
            body = b""
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                body = await asyncio.wait_for(reader.read(4096), 1.0)
            writer.close()
            raise RuntimeFailure(
                f"runtime streaming server refused the upgrade: {status} "
                f"{body.decode(errors='replace').strip()}"
            )
        client = cls(reader, writer)
        client._pump = asyncio.create_task(client._run_pump(), name="cri-spdy-pump")
        return client

    def open_stream(self, headers: dict[str, str], *, fin: bool = False) -> int:
        sid, frame = self._session.send_syn_stream(tuple(headers.items()), fin=fin)
        self._queues[sid] = asyncio.Queue()
        self._writer.write(frame)
        return sid

    async def send(self, sid: int, data: bytes, *, fin: bool = False) -> None:
        self._writer.write(self._session.send_data(sid, data, fin=fin))
        await self._writer.drain()

    async def recv(self, sid: int) -> bytes | None:
        return await self._queues[sid].get()

    async def _run_pump(self) -> None:
        try:
            while True:
                data = await self._reader.read(65536)
                for ev in self._session.receive_data(data):
                    self._dispatch(ev)
                if not data:
                    return
        except (OSError, RuntimeFailure, ValueError):
            pass
        finally:
            for q in self._queues.values():
                q.put_nowait(None)

    def _dispatch(self, ev: object) -> None:
        if isinstance(ev, DataReceived):
            q = self._queues.get(ev.stream_id)
            if q is not None:
                if ev.data:
                    q.put_nowait(ev.data)
                if ev.fin:
                    q.put_nowait(None)
        elif isinstance(ev, StreamReset):
            q = self._queues.get(ev.stream_id)
            if q is not None:
                q.put_nowait(None)
        elif isinstance(ev, PingReceived) and not ev.is_echo:
            self._writer.write(self._session.send_ping(ev.ping_id))
        elif isinstance(ev, StreamOpened | StreamRejected):
            self._writer.write(self._session.send_rst_stream(ev.stream_id))
        elif isinstance(ev, SessionClosed):
            for q in self._queues.values():
                q.put_nowait(None)

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


def parse_exit_status(raw: bytes) -> int:
    """The v4 error channel's ``metav1.Status``: 0, the exit code, or a runtime error."""
    if not raw.strip():
        return 0
    try:
        status = json.loads(raw)
    except ValueError:
        raise RuntimeFailure(raw.decode(errors="replace")) from None
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                with contextlib.suppress(ValueError):
                    return int(cause.get("message", ""))
    raise RuntimeFailure(str(status.get("message") or raw.decode(errors="replace")))


async def _copy_in(client: _SpdyClient, sid: int, chunks: AsyncIterator[bytes]) -> None:
    async for chunk in chunks:
        if chunk:
            await client.send(sid, chunk)
    await client.send(sid, b"", fin=True)


async def _copy_resize(client: _SpdyClient, sid: int, sizes: AsyncIterator[TerminalSize]) -> None:
    async for size in sizes:
        await client.send(sid, json.dumps({"Width": size.width, "Height": size.height}).encode())


async def _copy_out(
    client: _SpdyClient, sid: int, sink: Callable[[bytes], Awaitable[None]]
) -> None:
    while (chunk := await client.recv(sid)) is not None:
        await sink(chunk)


async def _session(url: str, io: StreamIO) -> int:
    client = await _SpdyClient.connect(url, EXEC_PROTOCOL)
    feeders: list[asyncio.Task[None]] = []
    try:
        err = client.open_stream({"streamtype": "error"}, fin=True)
        outs = []
        if io.stdin is not None:
            sid = client.open_stream({"streamtype": "stdin"})
            feeders.append(asyncio.create_task(_copy_in(client, sid, io.stdin)))
        if io.stdout is not None:
            sid = client.open_stream({"streamtype": "stdout"}, fin=True)
            outs.append(_copy_out(client, sid, io.stdout))
        if io.stderr is not None and not io.tty:
            sid = client.open_stream({"streamtype": "stderr"}, fin=True)
            outs.append(_copy_out(client, sid, io.stderr))
        if io.tty and io.resize is not None:
            sid = client.open_stream({"streamtype": "resize"})
            feeders.append(asyncio.create_task(_copy_resize(client, sid, io.resize)))

        async def status() -> bytes:
            raw = b""
            while (chunk := await client.recv(err)) is not None:
                raw += chunk
            return raw

        raw, *_ = await asyncio.gather(status(), *outs)
        assert isinstance(raw, bytes)
        return parse_exit_status(raw)
    finally:
        for t in feeders:
            t.cancel()
        for t in feeders:
            with contextlib.suppress(asyncio.CancelledError, OSError, RuntimeFailure):
                await t
        await client.close()


async def run_exec(url: str, io: StreamIO) -> int:
    """Run the exec session the runtime prepared at ``url``; return the command's exit code."""
    return await _session(url, io)


async def run_attach(url: str, io: StreamIO) -> None:
    """Attach ``io`` until the container's output ends or the runtime closes the session."""
    await _session(url, io)


_request_ids = itertools.count()


class CriPortConnection:
    """One TCP connection to a pod port through the runtime's port-forward server."""

    def __init__(self, client: _SpdyClient, data_sid: int, error_sid: int) -> None:
        self._client = client
        self._data = data_sid
        self._error = error_sid
        self._eof = False
        self._pending = b""  # a received chunk beyond what read(n) returned

    @classmethod
    async def open(cls, url: str, port: int) -> CriPortConnection:
        client = await _SpdyClient.connect(url, PORTFORWARD_PROTOCOL)
        rid = str(next(_request_ids))
        error_sid = client.open_stream(
            {"streamtype": "error", "port": str(port), "requestid": rid}, fin=True
        )
        data_sid = client.open_stream({"streamtype": "data", "port": str(port), "requestid": rid})
        return cls(client, data_sid, error_sid)

    async def read(self, n: int = 65536) -> bytes:
        if self._pending:
            head, self._pending = self._pending[:n], self._pending[n:]
            return head
        if self._eof:
            return b""
        chunk = await self._client.recv(self._data)
        if chunk is None:
            self._eof = True
            err = b""
            while (part := await self._client.recv(self._error)) is not None:
                err += part
            if err:
                raise RuntimeFailure(err.decode(errors="replace"))
            return b""
        chunk, self._pending = chunk[:n], chunk[n:]
        return chunk

    async def write(self, data: bytes) -> None:
        await self._client.send(self._data, data)

    async def close_write(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.send(self._data, b"", fin=True)

    async def close(self) -> None:
        await self._client.close()

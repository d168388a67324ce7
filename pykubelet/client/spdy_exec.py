"""``exec`` over SPDY/3.1 (``v4..v1.channel.k8s.io``), as kubectl falls back to when the kubelet
refuses WebSocket v5 (the Go kubelet does): one stream per stdio, stdin half-closed at EOF.
The project's sans-IO ``SpdySession`` in the client role does the framing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import urllib.parse
from collections.abc import Callable
from typing import BinaryIO

from pykubelet.client.config import Connection
from pykubelet.client.errors import ConnectionFailed, ServerError
from pykubelet.client.status import ExecOutcome, exec_outcome
from pykubelet.client.terminal import read_chunks, resize_payload
from pykubelet.streaming import (
    SPDY_REMOTECOMMAND_VERSIONS,
    DataReceived,
    GoAwayReceived,
    PingReceived,
    Role,
    SessionClosed,
    SpdySession,
    SpdyVersion,
)

__all__ = ["spdy_exec"]


def _request(conn: Connection, host: str, target: str) -> bytes:
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {host}",
        "Connection: Upgrade",
        "Upgrade: SPDY/3.1",
        *(f"X-Stream-Protocol-Version: {v}" for v in SPDY_REMOTECOMMAND_VERSIONS),
        "Content-Length: 0",
    ]
    if conn.token:
        lines.append(f"Authorization: Bearer {conn.token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _refusal(reader: asyncio.StreamReader, head: str) -> ServerError:
    status = int(head.split(" ", 2)[1])
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    body = await reader.readexactly(length) if length else b""
    return ServerError(status, body.decode("utf-8", "replace"))


async def spdy_exec(
    conn: Connection,
    path: str,
    query: list[tuple[str, str]],
    *,
    stdin: BinaryIO | None,
    stdout: BinaryIO,
    stderr: BinaryIO,
    tty_fd: int | None,
) -> ExecOutcome:
    """Run a remote command; ``stdin`` None: not attached; ``tty_fd``: send its size (v3+)."""
    url = urllib.parse.urlsplit(conn.server)
    host, port = url.hostname or "127.0.0.1", url.port or (443 if url.scheme == "https" else 80)
    ctx: ssl.SSLContext | None = conn.ssl_context()
    try:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ctx, server_hostname=host if ctx else None
        )
    except (OSError, ssl.SSLError) as e:
        raise ConnectionFailed(f"unable to connect to {conn.server}: {e}") from None
    try:
        target = f"{path}?{urllib.parse.urlencode(query)}"
        writer.write(_request(conn, url.netloc, target))
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        if int(head.split(" ", 2)[1]) != 101:
            raise await _refusal(reader, head)
        chosen = ""
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "x-stream-protocol-version":
                chosen = value.strip()
        version = SpdyVersion(chosen) if chosen in SPDY_REMOTECOMMAND_VERSIONS else SpdyVersion.V1
        return await _session(
            reader, writer, version, stdin=stdin, stdout=stdout, stderr=stderr, tty_fd=tty_fd
        )
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def _session(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    version: SpdyVersion,
    *,
    stdin: BinaryIO | None,
    stdout: BinaryIO,
    stderr: BinaryIO,
    tty_fd: int | None,
) -> ExecOutcome:
    session = SpdySession(Role.CLIENT)

    def open_stream(kind: str) -> int:
        sid, data = session.send_syn_stream((("streamtype", kind),))
        writer.write(data)
        return sid

    # client-go's order: error, stdin, stdout, stderr (not with a tty), resize (v3+ with a tty)
    error_id = open_stream("error")
    stdin_id = open_stream("stdin") if stdin is not None else None
    sinks: dict[int, BinaryIO] = {open_stream("stdout"): stdout}
    if tty_fd is None:
        sinks[open_stream("stderr")] = stderr
    resize_id = None
    if tty_fd is not None and version in (SpdyVersion.V3, SpdyVersion.V4):
        resize_id = open_stream("resize")
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []

    def send_resize() -> None:
        if resize_id is not None and tty_fd is not None:
            writer.write(session.send_data(resize_id, resize_payload(tty_fd)))

    send_resize()
    if resize_id is not None:
        loop.add_signal_handler(signal.SIGWINCH, send_resize)
    if stdin is not None and stdin_id is not None:
        tasks.append(asyncio.create_task(_pump_stdin(stdin, stdin_id, session, writer.write)))
    status = b""
    try:
        while chunk := await reader.read(256 * 1024):
            done = False
            for ev in session.receive_data(chunk):
                if isinstance(ev, DataReceived) and ev.stream_id in sinks:
                    sinks[ev.stream_id].write(ev.data)
                    sinks[ev.stream_id].flush()
                elif isinstance(ev, DataReceived) and ev.stream_id == error_id:
                    status += ev.data
                elif isinstance(ev, PingReceived) and not ev.is_echo:
                    writer.write(session.send_ping(ev.ping_id))
                elif isinstance(ev, GoAwayReceived | SessionClosed):
                    done = True
            if done:
                break
    finally:
        if resize_id is not None:
            loop.remove_signal_handler(signal.SIGWINCH)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await t
    return exec_outcome(status, json_status=version is SpdyVersion.V4)


async def _pump_stdin(
    stdin: BinaryIO, stream_id: int, session: SpdySession, write: Callable[[bytes], object]
) -> None:
    async for chunk in read_chunks(stdin):
        write(session.send_data(stream_id, chunk))
    write(session.send_data(stream_id, b"", fin=True))

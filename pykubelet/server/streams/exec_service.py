"""Runs one exec/attach session over an upgraded connection (SPDY streams or WS channels).

The runtime only sees a ``StreamIO``; this module turns streams/channels into it, writes the
version-specific status at the end and closes the connection as upstream does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from pykubelet.runtime.types import StreamIO, TerminalSize
from pykubelet.server.middleware import peer_waited, stream_started
from pykubelet.server.streams.aio_iter import QueueIterator
from pykubelet.server.streams.backend import SessionRecorder, StreamBackend, open_recorder
from pykubelet.server.streams.hangup import ended_by_hang_up
from pykubelet.server.streams.stream_adapter import SpdyConnection, SpdyStream, hijack_spdy
from pykubelet.server.streams.ws_adapter import WsChannelConnection, new_websocket
from pykubelet.streaming import (
    RESIZE_MESSAGE_MAX,
    ChannelClosed,
    RemoteCommandOptions,
    RemoteProtocolError,
    ResizeDecoder,
    SpdyVersion,
    StreamOpened,
    WsProtocol,
    encode_status,
    exit_error_text,
    expected_spdy_streams,
)

__all__ = ["CommandSession", "RunFn", "serve_exec_spdy", "serve_exec_ws"]

log = logging.getLogger(__name__)

RunFn = Callable[[StreamIO], Awaitable[int | None]]
"""Runs the command (exec: returns the exit code) or attaches (returns None)."""

_CANCEL_GRACE_S = 10.0
_STDIN_QUEUE_BYTES = 4 << 20
_RESIZE_QUEUE_BYTES = 4 << 10
_KNOWN_STREAMS = ("error", "stdin", "stdout", "stderr", "resize")


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandSession:
    opts: RemoteCommandOptions
    run: RunFn
    attach: bool
    audit_id: str
    backend: StreamBackend


def _recorder(session: CommandSession) -> SessionRecorder | None:
    factory = session.backend.recorder_factory
    if factory is None:
        return None
    return open_recorder(factory, session.audit_id, session.opts.command)


def _with_recording(
    write: Callable[[bytes], Awaitable[None]], rec: SessionRecorder | None
) -> Callable[[bytes], Awaitable[None]]:
    if rec is None:
        return write

    async def recorded(data: bytes) -> None:
        rec.output(data)
        await write(data)

    return recorded


async def _recorded_input(
    source: AsyncIterator[bytes], rec: SessionRecorder | None
) -> AsyncIterator[bytes]:
    async for chunk in source:
        if rec is not None:
            rec.input(chunk)
        yield chunk


def _stdin(
    source: AsyncIterator[bytes] | None, rec: SessionRecorder | None, tty: bool
) -> AsyncIterator[bytes] | None:
    """Non-TTY standard input is recorded as input events (a TTY echoes what should be seen)."""
    if source is None or rec is None or tty:
        return source
    return _recorded_input(source, rec)


async def _resizes(
    source: AsyncIterator[bytes], rec: SessionRecorder | None
) -> AsyncIterator[TerminalSize]:
    decoder = ResizeDecoder()
    async for chunk in source:
        try:
            sizes = decoder.feed(chunk)
        except RemoteProtocolError as e:
            log.info("bad resize message ignored: %s", e)
            decoder = ResizeDecoder()
            continue
        for width, height in sizes:
            if rec is not None:
                rec.resize(width, height)
            yield TerminalSize(width=width, height=height)


async def _stream_chunks(stream: SpdyStream) -> AsyncIterator[bytes]:
    while chunk := await stream.read():
        yield chunk


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover


async def _run(
    session: CommandSession, io: StreamIO, json_status: bool, gone: asyncio.Event
) -> bytes | None:
    """Run until the command ends or the client is gone; the status bytes to write, if any."""
    run_task = asyncio.ensure_future(session.run(io))
    gone_task = asyncio.ensure_future(gone.wait())
    try:
        await asyncio.wait({run_task, gone_task}, return_when=asyncio.FIRST_COMPLETED)
        if not run_task.done():
            run_task.cancel()
            # Bounded: a runtime that does not wind down must not pin this handler forever.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(_CANCEL_GRACE_S):
                    await asyncio.shield(run_task)
            if not run_task.done():
                log.warning(
                    "runtime did not stop a cancelled stream session within %ss", _CANCEL_GRACE_S
                )
            return None
        code = run_task.result()
    except asyncio.CancelledError:
        run_task.cancel()
        raise
    except Exception as e:  # supervision point: a failed session reports on its error stream
        log.info("stream session failed: %s", e)
        return encode_status(json_status=json_status, internal_error=str(e), attach=session.attach)
    finally:
        gone_task.cancel()
    code = code or 0
    return encode_status(
        json_status=json_status,
        exit_code=code,
        exit_error=exit_error_text(session.opts.command, code),
        attach=session.attach,
    )


async def _await_hang_up(request: web.Request, conn: SpdyConnection | WsChannelConnection) -> None:
    """Linger for the client to hang up after the last frames (SPDY) or its close frame
    (WebSocket): a wait on the peer, so the request log keeps it out of the kubelet's own
    share. A hang-up's cancellation of the handler ends the wait, and the session ends as what
    it was, a 101 (``hangup``)."""
    waiting = time.monotonic()
    try:
        await conn.close()
    except asyncio.CancelledError:
        if not ended_by_hang_up(request):
            raise
    finally:
        peer_waited(request, time.monotonic() - waiting)


class _LateStreams:
    """The SPDY streams kubectl creates after the 101. A command started before they are all
    in (``serve_exec_spdy``) reads and writes through here: its IO waits until the last one is
    in, and then, as upstream, the last stream of each type is the one used."""

    def __init__(self) -> None:
        self.streams: dict[str, SpdyStream] = {}
        self.all_in = asyncio.Event()

    async def get(self, kind: str) -> SpdyStream | None:
        await self.all_in.wait()
        return self.streams.get(kind)

    def writer(self, kind: str) -> Callable[[bytes], Awaitable[None]]:
        async def write(data: bytes) -> None:
            stream = await self.get(kind)
            if stream is not None:  # a client that declared it but never made it: dropped
                await stream.write(data)

        return write

    async def chunks(self, kind: str) -> AsyncIterator[bytes]:
        stream = await self.get(kind)
        if stream is not None:
            async for chunk in _stream_chunks(stream):
                yield chunk


def _spdy_io(
    opts: RemoteCommandOptions,
    version: SpdyVersion,
    late: _LateStreams,
    rec: SessionRecorder | None,
) -> StreamIO:
    """The command's IO over the session's streams, as declared by the request's options."""
    stdin: AsyncIterator[bytes] | None = None
    if opts.stdin:
        stdin = _empty() if version is SpdyVersion.V1 else late.chunks("stdin")
    return StreamIO(
        stdin=_stdin(stdin, rec, opts.tty),
        stdout=_with_recording(late.writer("stdout"), rec) if opts.stdout else None,
        stderr=_with_recording(late.writer("stderr"), rec) if opts.stderr else None,
        tty=opts.tty,
        resize=_resizes(late.chunks("resize"), rec) if opts.tty else None,
    )


async def serve_exec_spdy(
    request: web.Request, version: SpdyVersion, session: CommandSession
) -> web.StreamResponse:
    """An exec starts its command right after the 101, while kubectl creates its streams
    through the API server (several round trips): as over WebSocket, where there are no
    streams to wait for; its output waits in its pipes meanwhile. A client that hangs up or
    never creates the error stream ends the command, as a hang-up does later. A TTY session
    (its first size comes on the resize stream) and attach wait for the streams, as upstream."""
    opts, backend = session.opts, session.backend
    wanted = expected_spdy_streams(version, opts)
    # v1 and v2 predate the resize stream: like upstream, they do not count it.
    resizable = version in (SpdyVersion.V3, SpdyVersion.V4)
    known = _KNOWN_STREAMS if resizable else tuple(k for k in _KNOWN_STREAMS if k != "resize")
    accepted = 0

    def accept(ev: StreamOpened) -> bool:
        """Streams of known types, as many as the session counts (duplicates count, as
        upstream); anything else, and anything after, is refused (RST)."""
        nonlocal accepted
        kind = ev.header("streamtype")
        if kind not in known or accepted >= wanted:
            log.info("refusing SPDY stream %d of type %r", ev.stream_id, kind)
            return False
        accepted += 1
        return True

    resp, conn = await hijack_spdy(
        request, version.value, accept=accept, idle_timeout_s=backend.idle_timeout_s
    )
    late = _LateStreams()
    rec: SessionRecorder | None = None
    run_task: asyncio.Future[bytes | None] | None = None
    json_status = version is SpdyVersion.V4

    def start() -> asyncio.Future[bytes | None]:
        nonlocal rec
        rec = _recorder(session)
        io = _spdy_io(opts, version, late, rec)
        return asyncio.ensure_future(_run(session, io, json_status, conn.closed))

    try:
        if not opts.tty and not session.attach:
            run_task = start()
        if not await _collect_streams(request, conn, wanted, late, backend.creation_timeout_s):
            return resp
        if "error" not in late.streams:  # enough streams, but not the one the status goes on
            log.info("SPDY exec session without an error stream; closing")
            conn.close_now()
            return resp
        if run_task is None:  # a TTY session or attach: started once its streams are in
            run_task = start()
        status = await run_task
        out = late.streams.get("stdout") if opts.stdout else None
        err = late.streams.get("stderr") if opts.stderr else None
        error_stream = late.streams["error"]
        with conn.corked():  # the whole ending in one write (one wake-up of the client)
            if status is not None:
                await error_stream.write(status)
            # FIN every stream we wrote before upstream's RST+GOAWAY ending, so clients whose
            # stacks drop buffered data on RST still see all output followed by a clean EOF.
            for stream in (out, err, error_stream):
                if stream is not None:
                    await stream.close_write()
            conn.end()
        await _await_hang_up(request, conn)
    finally:
        if run_task is not None and not run_task.done():
            run_task.cancel()  # the session ended before its streams: the command goes too
            await asyncio.wait({run_task}, timeout=_CANCEL_GRACE_S)
        if rec is not None:
            rec.close()
        conn.close_now()
    return resp


async def _collect_streams(
    request: web.Request,
    conn: SpdyConnection,
    wanted: int,
    late: _LateStreams,
    timeout_s: float,
) -> bool:
    """Wait for the client's ``wanted`` streams (a wait on the peer); False if it hung up or
    timed out first (the connection is then dropped, as upstream)."""
    waiting = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            for _ in range(wanted):
                stream = await conn.next_stream()
                if stream is None:
                    return False
                kind = stream.header("streamtype")
                assert kind is not None  # the acceptor let only known types through
                late.streams[kind] = stream
    except TimeoutError:
        log.info("timed out waiting for client to create streams")
        conn.close_now()
        return False
    finally:
        peer_waited(request, time.monotonic() - waiting)
    late.all_in.set()
    return True


async def serve_exec_ws(
    request: web.Request, protocol: WsProtocol, session: CommandSession
) -> web.StreamResponse:
    opts, backend = session.opts, session.backend
    ws = new_websocket((protocol.value,) if protocol.value else ())
    if protocol is WsProtocol.LEGACY:
        ws.headers["Sec-WebSocket-Protocol"] = ""
    stream_started(request)
    await ws.prepare(request)
    conn = WsChannelConnection(ws, protocol, backend.idle_timeout_s, request.transport)
    rec = _recorder(session)
    # Bounded by bytes, not messages (a message may be 32 MiB): stdin 4 MiB, resize 4 KiB.
    stdin: QueueIterator[bytes] = QueueIterator(weight=len, max_weight=_STDIN_QUEUE_BYTES)
    resize_raw: QueueIterator[bytes] = QueueIterator(weight=len, max_weight=_RESIZE_QUEUE_BYTES)

    async def put(queue: QueueIterator[bytes], data: bytes) -> None:
        if queue.full():
            async with conn.pause.paused():
                await queue.put(data)
        else:
            await queue.put(data)

    async def pump() -> None:
        while (msg := await conn.receive()) is not None:
            if isinstance(msg, ChannelClosed):
                if msg.channel == 0:
                    stdin.end()
            elif msg.channel == 0 and opts.stdin:
                await put(stdin, msg.payload)
            elif msg.channel == 4:
                if len(msg.payload) > RESIZE_MESSAGE_MAX:
                    log.info("resize message of %d bytes dropped", len(msg.payload))
                    continue
                await put(resize_raw, msg.payload)
        stdin.end()
        resize_raw.end()

    async def out(data: bytes) -> None:
        await conn.send(1, data)

    async def err(data: bytes) -> None:
        await conn.send(2, data)

    first = 1 if opts.stdout else 2 if opts.stderr else 3
    await conn.send(first, b"")
    io = StreamIO(
        stdin=_stdin(stdin, rec, opts.tty) if opts.stdin else None,
        stdout=_with_recording(out, rec) if opts.stdout else None,
        stderr=_with_recording(err, rec) if opts.stderr else None,
        tty=opts.tty,
        resize=_resizes(resize_raw, rec) if opts.tty else None,
    )
    pump_task = asyncio.ensure_future(pump())
    try:
        status = await _run(session, io, protocol.json_status, conn.closed)
        if status is not None:
            await conn.send(3, status)
    except RemoteProtocolError as e:
        log.info("WebSocket protocol error: %s", e)
    finally:
        pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, RemoteProtocolError):
            await pump_task
        if rec is not None:
            rec.close()
        await _await_hang_up(request, conn)
    return ws

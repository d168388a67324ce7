"""SPDY/3.1 over an upgraded connection: the socket hijack and the session driver.

With ``ws_adapter.py`` this is the only code that reads an upgraded transport.

``SpdyConnection`` takes over an aiohttp connection after a hand-written 101: aiohttp's own
parser is replaced by a hook (``RequestHandler.set_parser``, the seam aiohttp's WebSocket
support uses), so every byte after the upgrade goes straight into the sans-IO ``SpdySession``.
Writes go to the transport (TLS or not) with aiohttp's drain for back-pressure. Both
connection kinds own the idle timeout; creation timeouts belong to the services using them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

from aiohttp import web

from pykubelet.server.middleware import stream_started
from pykubelet.streaming import (
    DataReceived,
    GoAwayReceived,
    GoAwayStatus,
    PingReceived,
    RemoteProtocolError,
    Role,
    RstStatus,
    SessionClosed,
    SpdySession,
    StreamOpened,
    StreamRejected,
    StreamReset,
    StreamState,
)
from pykubelet.streaming.spdy_frames import GoAwayFrame, encode_frame

__all__ = [
    "IdleWatch",
    "SpdyConnection",
    "SpdyStream",
    "StreamAcceptor",
    "Wire",
    "hijack_spdy",
]

log = logging.getLogger(__name__)

_PAUSE_ABOVE_BYTES = 8 << 20
_RESUME_BELOW_BYTES = 1 << 20
# Per connection: streams tracked at once (exec uses 5, port-forward 2 per forwarded
# connection), streams opened but not yet taken by the service, and the header block of one
# SYN_STREAM (kubectl's are a few hundred bytes).
MAX_STREAMS = 256
MAX_UNCLAIMED = 32
MAX_HEADER_BLOCK = 16 << 10

# Go's spdystream replies with no headers; peers that layer HTTP on SPDY (they send ":method")
# insist on a ":status" in the reply, so those get one. kubectl never sends ":method".
_HTTP_REPLY = ((":status", "200"), (":version", "HTTP/1.1"))

StreamAcceptor = Callable[[StreamOpened], bool]


class IdleWatch:
    """Closes a connection when no frame moved either way for ``idle_timeout_s``."""

    def __init__(self, idle_timeout_s: float, on_idle: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeout = idle_timeout_s
        self._on_idle = on_idle
        self.last = self._loop.time()
        self._handle: asyncio.TimerHandle | None = None
        if idle_timeout_s > 0:
            self._handle = self._loop.call_later(idle_timeout_s, self._check)

    def touch(self) -> None:
        self.last = self._loop.time()

    def _check(self) -> None:
        remaining = self.last + self._timeout - self._loop.time()
        if remaining <= 0:
            self._handle = None
            self._on_idle()
        else:
            self._handle = self._loop.call_later(remaining, self._check)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class SpdyStream:
    """One SPDY stream as the services see it: read until ``b""``, write, half-close, reset."""

    def __init__(self, conn: SpdyConnection, stream_id: int, headers: tuple[tuple[str, str], ...]):
        self.conn = conn
        self.id = stream_id
        self.headers = headers
        self._chunks: collections.deque[bytes] = collections.deque()
        self._eof = False
        self.reset_by_peer = False
        self._readable = asyncio.Event()

    def header(self, name: str) -> str | None:
        return dict(self.headers).get(name)

    def _feed(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self.conn._buffered(len(data))
        self._readable.set()

    def _feed_eof(self) -> None:
        self._eof = True
        self._readable.set()

    async def read(self) -> bytes:
        """The next chunk from the peer, ``b""`` once it half-closed, reset or went away."""
        while not self._chunks:
            if self._eof:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = self._chunks.popleft()
        self.conn._buffered(-len(data))
        return data

    async def write(self, data: bytes | memoryview) -> None:
        await self.conn.send_data(self.id, bytes(data))

    async def close_write(self) -> None:
        await self.conn.send_data(self.id, b"", fin=True)

    def reset(self, status: int = RstStatus.CANCEL) -> None:
        self.conn.reset_stream(self.id, status)


class _ParserHook:
    """Stands in for aiohttp's payload parser on a hijacked connection."""

    def __init__(self, conn: SpdyConnection) -> None:
        self._conn = conn

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._conn.feed(data)
        return False, b""

    def feed_eof(self) -> None:
        self._conn.feed(b"")


class SpdyConnection:
    """A server-role SPDY/3.1 session on a hijacked aiohttp connection."""

    def __init__(
        self,
        wire: Wire,
        *,
        accept: StreamAcceptor,
        idle_timeout_s: float,
        max_streams: int = MAX_STREAMS,
    ) -> None:
        self._wire = wire
        self._accept = accept
        self._max_streams = max_streams
        self.refused = 0  # streams refused by the acceptor or the caps
        self.session = SpdySession(
            Role.SERVER, max_header_block_bytes=MAX_HEADER_BLOCK, max_open_streams=max_streams
        )
        self.streams: dict[int, SpdyStream] = {}
        self._opened: asyncio.Queue[SpdyStream | None] = asyncio.Queue()
        self.closed = asyncio.Event()
        self._buffered_bytes = 0
        self._paused = False
        self._idle = IdleWatch(idle_timeout_s, self._on_idle)
        # Frames written while corked go out as one write: one syscall and one wake-up of the
        # peer instead of one per frame (the replies to a burst of SYN_STREAMs; an exec's
        # status, FINs, RSTs and GOAWAY).
        self._corked: list[bytes] | None = None
        self._ended = False

    # -- inbound (called from the transport's data_received) ---------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` when the connection ended."""
        if data:
            self._on_bytes(data)
        else:
            self._on_eof()

    def _on_bytes(self, data: bytes) -> None:
        if self.closed.is_set():
            return
        self._idle.touch()
        try:
            events = self.session.receive_data(data)
        except RemoteProtocolError as e:
            log.info("SPDY protocol error from peer: %s", e)
            goaway = GoAwayFrame(
                last_good_stream_id=self.session.last_remote_stream_id,
                status=GoAwayStatus.PROTOCOL_ERROR,
            )
            self._write(encode_frame(goaway))
            self._shutdown()
            return
        with self.corked():
            for ev in events:
                self._on_event(ev)

    def _on_event(self, ev: object) -> None:
        if isinstance(ev, DataReceived):
            stream = self.streams.get(ev.stream_id)
            if stream is not None:
                stream._feed(ev.data)
                if ev.fin:
                    stream._feed_eof()
        elif isinstance(ev, StreamOpened):
            self._on_opened(ev)
        elif isinstance(ev, StreamReset):
            stream = self.streams.pop(ev.stream_id, None)  # forgotten: nothing more comes
            if stream is not None:
                stream.reset_by_peer = True
                stream._feed_eof()
        elif isinstance(ev, StreamRejected):
            self._write(self.session.send_rst_stream(ev.stream_id, ev.status))
        elif isinstance(ev, PingReceived):
            if not ev.is_echo:
                self._write(self.session.send_ping(ev.ping_id))
        elif isinstance(ev, GoAwayReceived):
            pass  # the peer opens nothing more; streams in flight drain normally
        elif isinstance(ev, SessionClosed):
            self._shutdown()

    def _on_opened(self, ev: StreamOpened) -> None:
        if (
            len(self.streams) >= self._max_streams
            or self._opened.qsize() >= MAX_UNCLAIMED
            or not self._accept(ev)
        ):
            self.refused += 1
            self._write(self.session.send_rst_stream(ev.stream_id, RstStatus.REFUSED_STREAM))
            return
        stream = SpdyStream(self, ev.stream_id, ev.headers)
        self.streams[ev.stream_id] = stream
        if ev.fin:
            stream._feed_eof()
        if self.session.stream_state(ev.stream_id) is not StreamState.CLOSED:
            reply = _HTTP_REPLY if ev.header(":method") is not None else ()
            self._write(self.session.send_syn_reply(ev.stream_id, reply))
        self._opened.put_nowait(stream)

    def _on_eof(self) -> None:
        self._shutdown()

    def _on_idle(self) -> None:
        log.info("SPDY connection idle for too long; closing")
        self.close_now()

    def _buffered(self, delta: int) -> None:
        self._buffered_bytes += delta
        if not self._paused and self._buffered_bytes > _PAUSE_ABOVE_BYTES:
            self._paused = True
            self._wire.pause_reading()
        elif self._paused and self._buffered_bytes < _RESUME_BELOW_BYTES:
            self._paused = False
            if not self._wire.is_closing():
                self._wire.resume_reading()

    def _shutdown(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self._idle.cancel()
        self._opened.put_nowait(None)
        for stream in self.streams.values():
            stream._feed_eof()
        self._flush()  # frames already written by a corked caller still go before the close
        if not self._wire.is_closing():
            self._wire.close()

    async def next_stream(self) -> SpdyStream | None:
        """The next stream the peer opened (already replied to); None once closed."""
        stream = await self._opened.get()
        if stream is None:
            self._opened.put_nowait(None)
        return stream

    # -- outbound ------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._corked is not None:
            self._corked.append(data)
        else:
            self._wire.write(data)

    def _flush(self) -> None:
        pending, self._corked = self._corked, None
        if pending:
            self._wire.write(b"".join(pending))

    @contextlib.contextmanager
    def corked(self) -> Iterator[None]:
        """Hold frames written inside the block and write them together at its end (nested
        blocks join the outer one). Never await the peer inside: nothing is sent until then."""
        if self._corked is not None:
            yield
            return
        self._corked = []
        try:
            yield
        finally:
            self._flush()

    def _usable(self, stream_id: int) -> bool:
        return not self.closed.is_set() and self.session.stream_state(stream_id) in (
            StreamState.OPEN,
            StreamState.HALF_CLOSED_REMOTE,
        )

    async def send_data(self, stream_id: int, data: bytes, *, fin: bool = False) -> None:
        """Write DATA; silently dropped when the stream or connection is already gone."""
        if not self._usable(stream_id):
            return
        self._idle.touch()
        self._write(self.session.send_data(stream_id, data, fin=fin))
        if fin and self.session.stream_state(stream_id) is StreamState.CLOSED:
            self.streams.pop(stream_id, None)  # closed both ways: forget it
        try:
            await self._wire.drain()
        except ConnectionError:  # the peer went away while we were paused
            self._shutdown()

    def reset_stream(self, stream_id: int, status: int = RstStatus.CANCEL) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            stream._feed_eof()
        if self.closed.is_set():
            return
        if self.session.stream_state(stream_id) is not StreamState.CLOSED:
            self._write(self.session.send_rst_stream(stream_id, status))

    def end(self) -> None:
        """Upstream's last frames: RST every stream, GOAWAY(OK) (once; with the frames of an
        enclosing ``corked`` block when there is one)."""
        if self._ended or self.closed.is_set():
            return
        self._ended = True
        with self.corked():
            for sid in list(self.streams):
                self.reset_stream(sid, RstStatus.CANCEL)
            self._write(self.session.send_goaway(GoAwayStatus.OK))

    async def close(self, linger_s: float = 1.0) -> None:
        """Upstream's ending: reset every stream, GOAWAY(OK), close the socket.

        The close lingers (bounded) for the peer to hang up first, so the last frames are not
        lost to a TCP reset or to clients that drop streams as soon as the socket closes.
        """
        if not self.closed.is_set():
            self.end()
            with contextlib.suppress(TimeoutError, ConnectionError):
                await self._wire.drain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(linger_s):
                    await self.closed.wait()
        self._shutdown()

    def close_now(self) -> None:
        """Idle or creation timeout: drop everything."""
        if not self.closed.is_set():
            for sid in list(self.streams):
                self.reset_stream(sid, RstStatus.CANCEL)
        self._shutdown()


class Wire(Protocol):
    """The byte pipe under a SPDY session: a hijacked socket, or a WebSocket tunnel."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def is_closing(self) -> bool: ...

    def close(self) -> None: ...


class _TransportWire:
    """The hijacked aiohttp transport (TLS or plain) with aiohttp's drain."""

    def __init__(self, transport: asyncio.Transport, writer: Any) -> None:
        self._t, self._writer = transport, writer
        self.write = transport.write
        self.pause_reading = transport.pause_reading
        self.resume_reading = transport.resume_reading
        self.is_closing = transport.is_closing
        self.close = transport.close

    async def drain(self) -> None:
        await self._writer.drain()


async def hijack_spdy(
    request: web.Request,
    protocol_version: str,
    *,
    accept: StreamAcceptor,
    idle_timeout_s: float,
) -> tuple[web.StreamResponse, SpdyConnection]:
    """Answer 101 for SPDY/3.1 and take the connection over."""
    resp = web.StreamResponse(status=101, reason="Switching Protocols")
    resp.headers["Connection"] = "Upgrade"
    resp.headers["Upgrade"] = "SPDY/3.1"
    resp.headers["X-Stream-Protocol-Version"] = protocol_version
    resp.force_close()
    stream_started(request)
    writer = await resp.prepare(request)
    transport = request.transport
    assert transport is not None
    wire = _TransportWire(transport, writer)
    conn = SpdyConnection(wire, accept=accept, idle_timeout_s=idle_timeout_s)
    request.protocol.set_parser(cast(Any, _ParserHook(conn)))
    return resp, conn

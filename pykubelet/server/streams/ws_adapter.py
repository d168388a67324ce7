"""WebSocket glue: channel.k8s.io connections, and SPDY tunnelled in WebSocket messages.

With ``stream_adapter.py`` this is the only code that reads an upgraded transport. aiohttp
frames the WebSocket; this module maps messages to channels, or to a SPDY byte stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web

from pykubelet.server.middleware import stream_started
from pykubelet.server.streams.stream_adapter import IdleWatch, SpdyConnection, StreamAcceptor
from pykubelet.streaming import ChannelClosed, ChannelMessage, WsChannelCodec, WsProtocol

__all__ = [
    "SPDY_TUNNEL_PROTOCOL",
    "ReadPause",
    "TunnelPumps",
    "WsChannelConnection",
    "answer_ping",
    "new_websocket",
    "tunnel_spdy",
]

SPDY_TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
_HIGH_WATER_BYTES = 4 << 20
_ENDED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)

log = logging.getLogger(__name__)


def new_websocket(
    protocols: tuple[str, ...], max_msg_size: int = 32 << 20
) -> web.WebSocketResponse:
    """A WebSocket response whose PINGs the caller answers (``answer_ping``): aiohttp's automatic
    PONG is written without pausing the reader, so a PING flood would queue without bound."""
    return web.WebSocketResponse(protocols=protocols, max_msg_size=max_msg_size, autoping=False)


class ReadPause:
    """Stops reading the socket while the reader awaits something else (a full queue, a PONG
    the peer does not read): nothing then piles up below us, PINGs included."""

    def __init__(self, transport: asyncio.BaseTransport | None) -> None:
        self._t = transport if isinstance(transport, asyncio.ReadTransport) else None

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        t = self._t
        if t is not None and not t.is_closing():
            t.pause_reading()
        try:
            yield
        finally:
            if t is not None and not t.is_closing():
                t.resume_reading()


async def answer_ping(ws: web.WebSocketResponse, data: bytes, pause: ReadPause) -> None:
    async with pause.paused():
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.pong(data)


class WsChannelConnection:
    """A prepared aiohttp WebSocket speaking one channel.k8s.io protocol."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        protocol: WsProtocol,
        idle_timeout_s: float,
        transport: asyncio.BaseTransport | None = None,
    ):
        self.ws = ws
        self.pause = ReadPause(transport)
        self.codec = WsChannelCodec(protocol)
        self.protocol = protocol
        self._idle = IdleWatch(idle_timeout_s, self._on_idle)
        self.closed = asyncio.Event()
        self._close_task: asyncio.Task[bool] | None = None

    def _on_idle(self) -> None:
        log.info("WebSocket stream idle for too long; closing")
        self.closed.set()
        self._close_task = asyncio.get_running_loop().create_task(self.ws.close())

    async def send(self, channel: int, payload: bytes) -> None:
        if self.closed.is_set() or self.ws.closed:
            return
        self._idle.touch()
        message = self.codec.encode(channel, payload)
        try:
            if isinstance(message, str):
                await self.ws.send_str(message)
            else:
                await self.ws.send_bytes(message)
        except ConnectionError:
            self.closed.set()

    async def receive(self) -> ChannelMessage | ChannelClosed | None:
        """The next meaningful message; ``None`` once the socket is closed."""
        while not self.closed.is_set():
            msg = await self.ws.receive()
            self._idle.touch()
            if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                decoded = self.codec.decode(msg.data)
                if decoded is not None:
                    return decoded
            elif msg.type is WSMsgType.PING:
                await answer_ping(self.ws, msg.data, self.pause)
            elif msg.type in (
                WSMsgType.CLOSE,
                WSMsgType.CLOSING,
                WSMsgType.CLOSED,
                WSMsgType.ERROR,
            ):
                self.closed.set()
        return None

    async def close(self) -> None:
        self._idle.cancel()
        self.closed.set()
        await self.ws.close()
        if self._close_task is not None:
            await self._close_task


class _WsTunnelWire:
    """A ``Wire`` over WebSocket binary messages: each write becomes (part of) one message."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None) -> None:
        self._ws = ws
        self._pause = ReadPause(transport)
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._reading = asyncio.Event()
        self._reading.set()
        self._closing = False

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        self._out.append(data)
        self._out_bytes += len(data)
        if self._out_bytes > _HIGH_WATER_BYTES:
            self._drained.clear()
        self._wake.set()

    async def drain(self) -> None:
        await self._drained.wait()

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True
        self._reading.set()
        self._wake.set()

    async def send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._out:
                data = b"".join(self._out)
                self._out.clear()
                self._out_bytes = 0
                try:
                    await self._ws.send_bytes(data)
                except ConnectionError:
                    self._closing = True
                self._drained.set()
            if self._closing:
                self._drained.set()
                await self._ws.close()
                return

    async def receive_loop(self, conn: SpdyConnection) -> None:
        while not self._closing:
            await self._reading.wait()
            msg = await self._ws.receive()
            if msg.type is WSMsgType.BINARY:
                # client-go's tunnel sends zero-length messages (empty writes); b"" is EOF
                # to the SPDY core, so they are skipped
                if msg.data:
                    conn.feed(msg.data)
            elif msg.type is WSMsgType.PING:
                await answer_ping(self._ws, msg.data, self._pause)
            elif msg.type in (
                WSMsgType.CLOSE,
                WSMsgType.CLOSING,
                WSMsgType.CLOSED,
                WSMsgType.ERROR,
            ):
                break
        conn.feed(b"")


class TunnelPumps:
    """The two tasks that move a tunnel's bytes; ``stop()`` ends and awaits them."""

    def __init__(self, *tasks: asyncio.Task[None]) -> None:
        self._tasks = tasks

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def tunnel_spdy(
    request: web.Request, *, accept: StreamAcceptor, idle_timeout_s: float
) -> tuple[web.WebSocketResponse, SpdyConnection, TunnelPumps]:
    """Accept the WebSocket and run a server SPDY session over its binary messages."""
    ws = new_websocket((SPDY_TUNNEL_PROTOCOL,))
    stream_started(request)
    await ws.prepare(request)
    wire = _WsTunnelWire(ws, request.transport)
    conn = SpdyConnection(wire, accept=accept, idle_timeout_s=idle_timeout_s)
    loop = asyncio.get_running_loop()
    pumps = TunnelPumps(
        loop.create_task(wire.send_loop()), loop.create_task(wire.receive_loop(conn))
    )
    return ws, conn, pumps

"""WebSocket glue: channel.k8s.io connections, and SPDY tunnelled in WebSocket messages.

With ``stream_adapter.py`` this is the only code that reads an upgraded transport. aiohttp
frames the WebSocket; this module maps messages to channels, or to a SPDY byte stream.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from pykubelet.server.streams.stream_adapter import IdleWatch
from pykubelet.streaming import ChannelClosed, ChannelMessage, WsChannelCodec, WsProtocol

__all__ = ["WsChannelConnection"]

log = logging.getLogger(__name__)


class WsChannelConnection:
    """A prepared aiohttp WebSocket speaking one channel.k8s.io protocol."""

    def __init__(self, ws: web.WebSocketResponse, protocol: WsProtocol, idle_timeout_s: float):
        self.ws = ws
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

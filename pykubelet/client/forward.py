"""``port-forward``: local TCP listeners, one WebSocket (``v4.channel.k8s.io``) per accepted
connection, data on channel 0 and errors on channel 1 (the server's first message on each is the
port, 2 bytes little-endian, stripped here)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

import aiohttp

from pykubelet.client.errors import ClientError, UsageError
from pykubelet.client.transport import KubeletSession
from pykubelet.streaming import ChannelMessage, WsChannelCodec, WsProtocol

__all__ = ["PortPair", "forward_ports", "parse_port_pairs"]

DATA, ERROR = 0, 1


@dataclass(frozen=True, slots=True, kw_only=True)
class PortPair:
    local: int  # 0: pick a free port
    remote: int


def _port(raw: str, spec: str, *, allow_zero: bool) -> int:
    if not raw.isdigit() or not (0 if allow_zero else 1) <= int(raw) <= 65535:
        raise UsageError(f"invalid port {spec!r}: ports must be numbers in 1..65535")
    return int(raw)


def parse_port_pairs(specs: Sequence[str]) -> list[PortPair]:
    """kubectl's forms: ``8080:80``, ``80`` (same port locally), ``:80`` (a free local port)."""
    if not specs:
        raise UsageError("at least 1 PORT is required for port-forward")
    pairs = []
    for spec in specs:
        local, sep, remote = spec.partition(":")
        if not sep:
            local = remote = spec
        pairs.append(
            PortPair(
                local=_port(local or "0", spec, allow_zero=True),
                remote=_port(remote, spec, allow_zero=False),
            )
        )
    return pairs


class _Forward:
    def __init__(self, session: KubeletSession, path: str, remote: int, log: TextIO) -> None:
        self.session, self.path, self.remote, self.log = session, path, remote, log

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        local = writer.get_extra_info("sockname")[1]
        print(f"Handling connection for {local}", file=self.log, flush=True)
        try:
            ws = await self.session.websocket(
                self.path, [("port", str(self.remote))], (WsProtocol.V4.value,)
            )
        except ClientError as e:  # one failed connection must not end the listener
            print(f"E: error upgrading connection: {e}", file=self.log, flush=True)
            writer.close()
            return
        codec = WsChannelCodec(WsProtocol(ws.protocol or ""))
        up = asyncio.create_task(self._up(reader, ws, codec))
        try:
            await self._down(ws, writer, codec)
        finally:
            up.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await up
            await ws.close()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _up(
        self,
        reader: asyncio.StreamReader,
        ws: aiohttp.ClientWebSocketResponse,
        codec: WsChannelCodec,
    ) -> None:
        # v4 has no half-close: after local EOF the socket stays open for the answer
        while chunk := await reader.read(65536):
            message = codec.encode(DATA, chunk)
            if isinstance(message, str):
                await ws.send_str(message)
            else:
                await ws.send_bytes(message)

    async def _down(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        writer: asyncio.StreamWriter,
        codec: WsChannelCodec,
    ) -> None:
        prefix_left = {DATA: 2, ERROR: 2}
        async for msg in ws:
            if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                break
            decoded = codec.decode(msg.data)
            if not isinstance(decoded, ChannelMessage):
                continue
            payload = decoded.payload
            skip = min(prefix_left.get(decoded.channel, 0), len(payload))
            if skip:
                prefix_left[decoded.channel] -= skip
                payload = payload[skip:]
            if not payload:
                continue
            if decoded.channel == DATA:
                writer.write(payload)
                await writer.drain()
            elif decoded.channel == ERROR:
                text = payload.decode("utf-8", "replace")
                print(f"E: an error occurred forwarding {self.remote}: {text}", file=self.log)


async def forward_ports(
    session: KubeletSession,
    namespace: str,
    pod: str,
    pairs: Sequence[PortPair],
    *,
    address: str = "127.0.0.1",
    log: TextIO = sys.stdout,
    on_ready: Callable[[list[int]], None] | None = None,
) -> None:
    """Listen on every pair and forward until cancelled (Ctrl-C)."""
    path = f"/portForward/{namespace}/{pod}"
    servers = []
    bound: list[int] = []
    try:
        for pair in pairs:
            fwd = _Forward(session, path, pair.remote, log)
            try:
                server = await asyncio.start_server(fwd.handle, address, pair.local)
            except OSError as e:
                raise UsageError(f"unable to listen on port {pair.local}: {e.strerror}") from None
            servers.append(server)
            port = server.sockets[0].getsockname()[1]
            bound.append(port)
            print(f"Forwarding from {address}:{port} -> {pair.remote}", file=log, flush=True)
        if on_ready is not None:
            on_ready(bound)
        await asyncio.Event().wait()
    finally:
        for server in servers:
            server.close()

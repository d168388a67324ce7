"""``exec``: WebSocket ``v5.channel.k8s.io`` first, SPDY/3.1 when the kubelet refuses it (as
kubectl's fallback executor does; the Go kubelet refuses v5). Both carry stdin with an EOF, a
raw-mode TTY and SIGWINCH resizes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import aiohttp

from pykubelet.client.errors import UpgradeRefused
from pykubelet.client.spdy_exec import spdy_exec
from pykubelet.client.status import ExecOutcome, exec_outcome
from pykubelet.client.terminal import raw_terminal, read_chunks, resize_payload
from pykubelet.client.transport import KubeletSession
from pykubelet.streaming import CLOSE_CHANNEL, ChannelMessage, WsChannelCodec, WsProtocol

__all__ = ["ExecRequest", "run_exec"]

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
# kubectl's switch: "false" goes straight to SPDY
WEBSOCKETS_ENV = "KUBECTL_REMOTE_COMMAND_WEBSOCKETS"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecRequest:
    namespace: str
    pod: str
    container: str
    command: Sequence[str]
    stdin: bool = False
    tty: bool = False

    @property
    def path(self) -> str:
        return f"/exec/{self.namespace}/{self.pod}/{self.container}"

    def query(self) -> list[tuple[str, str]]:
        q = [("command", c) for c in self.command]
        q += [("output", "1")]
        if self.stdin:
            q.append(("input", "1"))
        if self.tty:
            q.append(("tty", "1"))
        else:
            q.append(("error", "1"))
        return q


async def _send(ws: aiohttp.ClientWebSocketResponse, message: bytes | str) -> None:
    if isinstance(message, str):
        await ws.send_str(message)
    else:
        await ws.send_bytes(message)


async def _pump_stdin(
    ws: aiohttp.ClientWebSocketResponse, codec: WsChannelCodec, stdin: BinaryIO
) -> None:
    """Copy stdin to channel 0, then v5's CLOSE for channel 0 (the remote sees EOF)."""
    async for chunk in read_chunks(stdin):
        await _send(ws, codec.encode(STDIN, chunk))
    await ws.send_bytes(bytes((CLOSE_CHANNEL, STDIN)))


async def _websocket_exec(
    ws: aiohttp.ClientWebSocketResponse,
    req: ExecRequest,
    *,
    stdin: BinaryIO,
    stdout: BinaryIO,
    stderr: BinaryIO,
    tty_fd: int | None,
) -> ExecOutcome:
    codec = WsChannelCodec(WsProtocol(ws.protocol or ""))
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    status = b""

    def resize() -> None:
        if tty_fd is not None:
            tasks.append(
                asyncio.create_task(_send(ws, codec.encode(RESIZE, resize_payload(tty_fd))))
            )

    try:
        if req.stdin:
            tasks.append(asyncio.create_task(_pump_stdin(ws, codec, stdin)))
        if tty_fd is not None:
            resize()
            loop.add_signal_handler(signal.SIGWINCH, resize)
        async for msg in ws:
            if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                break
            decoded = codec.decode(msg.data)
            if not isinstance(decoded, ChannelMessage) or not decoded.payload:
                continue
            if decoded.channel == STDOUT:
                stdout.write(decoded.payload)
                stdout.flush()
            elif decoded.channel == STDERR:
                stderr.write(decoded.payload)
                stderr.flush()
            elif decoded.channel == ERROR:
                status += decoded.payload
    finally:
        if tty_fd is not None:
            loop.remove_signal_handler(signal.SIGWINCH)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await t
        await ws.close()
    return exec_outcome(status, json_status=codec.protocol.json_status)


async def run_exec(
    session: KubeletSession,
    req: ExecRequest,
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
) -> ExecOutcome:
    """Run the command; returns how it ended (the caller prints and exits with it)."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    stderr = stderr or sys.stderr.buffer
    tty_fd = stdin.fileno() if req.tty and os.isatty(stdin.fileno()) else None
    with raw_terminal(stdin.fileno(), tty_fd is not None):
        try:
            if os.environ.get(WEBSOCKETS_ENV, "").lower() == "false":
                raise UpgradeRefused(0, "WebSockets turned off")
            ws = await session.websocket(req.path, req.query(), (WsProtocol.V5.value,))
        except UpgradeRefused:
            return await spdy_exec(
                session.conn,
                req.path,
                req.query(),
                stdin=stdin if req.stdin else None,
                stdout=stdout,
                stderr=stderr,
                tty_fd=tty_fd,
            )
        return await _websocket_exec(
            ws, req, stdin=stdin, stdout=stdout, stderr=stderr, tty_fd=tty_fd
        )

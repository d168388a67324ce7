"""``exec``: a remote command over WebSocket (``v5.channel.k8s.io``, else ``v4``), with the
project's sans-IO channel codec; stdin, a raw-mode TTY and SIGWINCH resizes for terminals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import stat
import sys
import termios
import tty
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import aiohttp

from pykubelet.client.status import ExecOutcome, exec_outcome
from pykubelet.client.transport import KubeletSession
from pykubelet.streaming import (
    CLOSE_CHANNEL,
    ChannelMessage,
    WsChannelCodec,
    WsProtocol,
)

__all__ = ["ExecRequest", "run_exec"]

PROTOCOLS = (WsProtocol.V5.value, WsProtocol.V4.value)
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecRequest:
    namespace: str
    pod: str
    container: str
    command: Sequence[str]
    stdin: bool = False
    tty: bool = False

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


@contextlib.contextmanager
def _raw_terminal(fd: int, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _resize_message(codec: WsChannelCodec, fd: int) -> bytes | str:
    """The terminal's size (of ``fd``, as kubectl reads it; COLUMNS/LINES play no part)."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        size = shutil.get_terminal_size()
    return codec.encode(RESIZE, json.dumps({"Width": size.columns, "Height": size.lines}).encode())


async def _send(ws: aiohttp.ClientWebSocketResponse, message: bytes | str) -> None:
    if isinstance(message, str):
        await ws.send_str(message)
    else:
        await ws.send_bytes(message)


async def _pump_stdin(
    ws: aiohttp.ClientWebSocketResponse, codec: WsChannelCodec, stdin: BinaryIO
) -> None:
    """Copy stdin to channel 0; at EOF send v5's CLOSE for stdin (v4 cannot say EOF)."""
    fd = stdin.fileno()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    regular = stat.S_ISREG(os.fstat(fd).st_mode)
    if not regular:  # ttys and pipes: epoll tells when there is something to read
        loop.add_reader(fd, lambda: queue.put_nowait(os.read(fd, 65536)))
    try:
        while True:
            chunk = os.read(fd, 65536) if regular else await queue.get()
            if not chunk:
                break
            await _send(ws, codec.encode(STDIN, chunk))
        if codec.protocol is WsProtocol.V5:
            await ws.send_bytes(bytes((CLOSE_CHANNEL, STDIN)))
    finally:
        if not regular:
            loop.remove_reader(fd)


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
    path = f"/exec/{req.namespace}/{req.pod}/{req.container}"
    ws = await session.websocket(path, req.query(), PROTOCOLS)
    codec = WsChannelCodec(WsProtocol(ws.protocol or ""))
    loop = asyncio.get_running_loop()
    status = b""
    tasks: list[asyncio.Task[None]] = []
    is_tty = req.tty and os.isatty(stdin.fileno())
    try:
        with _raw_terminal(stdin.fileno(), is_tty):
            if req.stdin:
                tasks.append(asyncio.create_task(_pump_stdin(ws, codec, stdin)))
            if req.tty:
                await _send(ws, _resize_message(codec, stdin.fileno()))
                if is_tty:
                    loop.add_signal_handler(
                        signal.SIGWINCH,
                        lambda: tasks.append(
                            asyncio.create_task(_send(ws, _resize_message(codec, stdin.fileno())))
                        ),
                    )
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
        if req.tty and is_tty:
            loop.remove_signal_handler(signal.SIGWINCH)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await t
        await ws.close()
    return exec_outcome(status, json_status=codec.protocol.json_status)

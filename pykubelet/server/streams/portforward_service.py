"""Port-forward sessions: SPDY data/error stream pairs and WebSocket channel pairs.

Each forwarded connection is a ``PortConnection`` from the runtime, copied both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from pykubelet.runtime.protocol import PortConnection
from pykubelet.server.middleware import stream_started
from pykubelet.server.streams.backend import StreamBackend
from pykubelet.server.streams.hangup import ended_by_hang_up
from pykubelet.server.streams.stream_adapter import SpdyConnection, SpdyStream, hijack_spdy
from pykubelet.server.streams.ws_adapter import WsChannelConnection, new_websocket, tunnel_spdy
from pykubelet.streaming import (
    PORTFORWARD_SPDY_PROTOCOL,
    ChannelMessage,
    PairComplete,
    PairError,
    PairPending,
    PortForwardPairer,
    StreamOpened,
    StreamRefused,
    WsProtocol,
    port_prefix,
    timeout_message,
)

__all__ = [
    "PortTarget",
    "serve_portforward_spdy",
    "serve_portforward_tunnel",
    "serve_portforward_ws",
]

log = logging.getLogger(__name__)

PortTarget = tuple[str, str]  # (sandbox id, pod uid), for error texts as upstream words them


def _forward_error(target: PortTarget, port: int, err: BaseException) -> bytes:
    sandbox_id, uid = target
    return f"error forwarding port {port} to pod {sandbox_id}, uid {uid}: {err}".encode()


async def _open(backend: StreamBackend, target: PortTarget, port: int) -> PortConnection:
    return await backend.streaming.port_forward(target[0], port)


async def _copy_out(pc: PortConnection, write: Callable[[bytes], Awaitable[None]]) -> None:
    while data := await pc.read(256 * 1024):
        await write(data)


async def _forward_pair(
    backend: StreamBackend,
    target: PortTarget,
    done: PairComplete,
    data: SpdyStream,
    err: SpdyStream,
) -> None:
    try:
        pc = await _open(backend, target, done.port)
    except Exception as e:  # supervision point: the failure goes on the error stream
        await err.write(_forward_error(target, done.port, e))
        await err.close_write()
        await data.close_write()
        return
    try:

        async def inbound() -> None:
            while chunk := await data.read():
                await pc.write(chunk)
            await pc.close_write()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(inbound())
            tg.create_task(_copy_out(pc, data.write))
    except* OSError as eg:
        await err.write(_forward_error(target, done.port, eg.exceptions[0]))
    finally:
        await pc.close()
        await data.close_write()
        await err.close_write()


class _PairedStreams:
    """SPDY port-forward on one connection: accepts, pairs and forwards data/error streams."""

    def __init__(self, backend: StreamBackend, target: PortTarget) -> None:
        self.backend, self.target = backend, target
        self.pairer = PortForwardPairer()
        self.results: dict[int, PairPending | PairError | PairComplete] = {}

    def accept(self, ev: StreamOpened) -> bool:
        result = self.pairer.add_stream(ev.stream_id, ev.headers)
        if isinstance(result, StreamRefused):
            log.info("port-forward stream %d refused: %s", ev.stream_id, result.reason)
            return False
        self.results[ev.stream_id] = result
        return True

    async def run(self, conn: SpdyConnection) -> None:
        backend, pairer = self.backend, self.pairer
        by_request: dict[str, dict[str, SpdyStream]] = {}
        label = f"{id(conn):#x}"

        async def expire(request_id: str) -> None:
            await asyncio.sleep(backend.creation_timeout_s)
            streams = by_request.pop(request_id, None)
            if streams is None:
                return
            pairer.forget(request_id)
            if (err := streams.get("error")) is not None:
                await err.write(timeout_message(label, request_id).encode())
            for s in streams.values():
                s.reset()

        timers: dict[str, asyncio.Task[None]] = {}
        try:
            async with asyncio.TaskGroup() as tg:
                while (stream := await conn.next_stream()) is not None:
                    result = self.results.pop(stream.id)
                    kind = stream.header("streamtype") or ""
                    if isinstance(result, PairError):
                        other = by_request.get(result.request_id, {}).get("error")
                        if other is not None:
                            tg.create_task(other.write(result.message.encode()))
                        stream.reset()
                        continue
                    streams = by_request.setdefault(result.request_id, {})
                    streams[kind] = stream
                    if isinstance(result, PairPending):
                        timers[result.request_id] = tg.create_task(expire(result.request_id))
                    elif isinstance(result, PairComplete):
                        del by_request[result.request_id]
                        if (timer := timers.pop(result.request_id, None)) is not None:
                            timer.cancel()
                        data_s, err_s = streams["data"], streams["error"]
                        tg.create_task(_forward_pair(backend, self.target, result, data_s, err_s))
                for timer in timers.values():
                    timer.cancel()
        finally:
            conn.close_now()


async def serve_portforward_spdy(
    request: web.Request, backend: StreamBackend, target: PortTarget
) -> web.StreamResponse:
    paired = _PairedStreams(backend, target)
    resp, conn = await hijack_spdy(
        request,
        PORTFORWARD_SPDY_PROTOCOL,
        accept=paired.accept,
        idle_timeout_s=backend.idle_timeout_s,
    )
    try:
        await paired.run(conn)
    except asyncio.CancelledError:
        if not ended_by_hang_up(request):  # kubectl's hang-up is the session's end
            raise
    return resp


async def serve_portforward_tunnel(
    request: web.Request, backend: StreamBackend, target: PortTarget
) -> web.StreamResponse:
    """SPDY port-forward tunnelled in WebSocket binary messages (``SPDY/3.1+portforward…``)."""
    paired = _PairedStreams(backend, target)
    ws, conn, pumps = await tunnel_spdy(
        request, accept=paired.accept, idle_timeout_s=backend.idle_timeout_s
    )
    try:
        await paired.run(conn)
    except asyncio.CancelledError:
        if not ended_by_hang_up(request):  # kubectl's hang-up is the session's end
            raise
    finally:
        await pumps.stop()
    return ws


async def serve_portforward_ws(
    request: web.Request,
    backend: StreamBackend,
    target: PortTarget,
    protocol: WsProtocol,
    ports: tuple[int, ...],
) -> web.StreamResponse:
    ws = new_websocket((protocol.value,) if protocol.value else ())
    if protocol is WsProtocol.LEGACY:
        ws.headers["Sec-WebSocket-Protocol"] = ""
    stream_started(request)
    await ws.prepare(request)
    conn = WsChannelConnection(ws, protocol, backend.idle_timeout_s, request.transport)
    for i, port in enumerate(ports):
        await conn.send(2 * i, port_prefix(port))
        await conn.send(2 * i + 1, port_prefix(port))
    loop = asyncio.get_running_loop()
    pcs: dict[int, asyncio.Future[PortConnection | None]] = {
        i: loop.create_future() for i in range(len(ports))
    }

    async def one(i: int, port: int) -> None:
        try:
            pc = await _open(backend, target, port)
        except Exception as e:  # supervision point: reported on the port's error channel
            pcs[i].set_result(None)
            await conn.send(2 * i + 1, _forward_error(target, port, e))
            return
        pcs[i].set_result(pc)

        async def out(data: bytes) -> None:
            await conn.send(2 * i, data)

        try:
            await _copy_out(pc, out)
        except OSError as e:
            await conn.send(2 * i + 1, _forward_error(target, port, e))
        finally:
            await pc.close()

    async def pump() -> None:
        while (msg := await conn.receive()) is not None:
            if isinstance(msg, ChannelMessage) and msg.channel % 2 == 0:
                waiter = pcs.get(msg.channel // 2)
                pc = await waiter if waiter is not None else None
                if pc is not None:
                    with contextlib.suppress(OSError):
                        await pc.write(msg.payload)
        for waiter in pcs.values():
            if waiter.done() and (pc := waiter.result()) is not None:
                with contextlib.suppress(OSError):
                    await pc.close()

    pump_task = asyncio.ensure_future(pump())
    try:
        await asyncio.gather(*(one(i, p) for i, p in enumerate(ports)))
    finally:
        pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump_task
        await conn.close()
    return ws

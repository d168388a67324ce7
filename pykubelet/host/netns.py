"""Network namespaces without ``os.setns`` (Python 3.11): ctypes ``setns`` in a throwaway thread.

``setns(CLONE_NEWNET)`` changes only the calling thread, and a socket keeps the namespace it was
created in for life. So ``socket_in_netns`` creates the socket in a dedicated thread that joined
the namespace and exits at once (never a pooled thread, which would carry the namespace into
unrelated work); the socket is then used from the event loop like any other. ``open_connection``
builds a TCP (optionally TLS) stream into a pod's namespace on top of it, and ``relay`` exposes a
port inside the namespace on a loopback port of the host, for clients that open their own sockets
(grpcio). An empty ``netns_path`` means the host's namespace everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from pykubelet.core.errors import NotFound, PykubeletError

__all__ = [
    "CLONE_NEWNET",
    "NetnsError",
    "open_connection",
    "relay",
    "run_in_netns",
    "socket_in_netns",
]

CLONE_NEWNET = 0x40000000
T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.setns.restype = ctypes.c_int


class NetnsError(PykubeletError):
    """Joining a network namespace failed (``errno`` says why)."""


def _join(netns_path: str) -> None:
    try:
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise NotFound(f"network namespace {netns_path} does not exist") from e
    except OSError as e:
        raise NetnsError(f"open {netns_path}: {e.strerror}") from e
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"setns {netns_path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def run_in_netns(netns_path: str, fn: Callable[[], T]) -> T:
    """Call ``fn`` in a fresh thread that joined ``netns_path``; blocks until it returns."""
    if not netns_path:
        return fn()
    box: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            _join(netns_path)
            box.append(fn())
        except BaseException as e:  # handed to the caller's thread
            errors.append(e)

    t = threading.Thread(target=body, name="netns", daemon=True)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return box[0]


def socket_in_netns(netns_path: str, family: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A new non-blocking socket that lives in ``netns_path``."""

    def make() -> socket.socket:
        s = socket.socket(family, kind)
        s.setblocking(False)
        return s

    return run_in_netns(netns_path, make)


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


async def open_connection(
    netns_path: str,
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP stream to ``host:port`` as seen from inside ``netns_path``.

    The caller bounds the time with ``asyncio.timeout``; an unreachable or refused port raises
    ``OSError`` as ``asyncio.open_connection`` would."""
    loop = asyncio.get_running_loop()
    sock = await loop.run_in_executor(None, socket_in_netns, netns_path, _family(host))
    try:
        await loop.sock_connect(sock, (host, port))
        return await asyncio.open_connection(
            sock=sock,
            ssl=tls,
            server_hostname=(server_hostname or host) if tls is not None else None,
        )
    except BaseException:
        sock.close()
        raise


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


@contextlib.asynccontextmanager
async def relay(netns_path: str, host: str, port: int) -> AsyncIterator[int]:
    """Expose ``host:port`` of ``netns_path`` on ``127.0.0.1:<yielded port>`` while open."""
    tasks: set[asyncio.Task[None]] = set()

    async def serve(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            tr, tw = await open_connection(netns_path, host, port)
        except OSError:
            cw.close()
            return
        try:
            await asyncio.gather(_pipe(cr, tw), _pipe(tr, cw))
        finally:
            tw.close()
            cw.close()

    def spawn(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(serve(cr, cw))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(spawn, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

"""The listening socket's guard: what an unauthenticated client can hold before any request.

aiohttp's own site accepts every connection, lets TLS handshakes take 60 s and waits for a
first request as long as its keep-alive timeout (3630 s). Here each accepted TCP connection is
counted (``max_connections`` in total, ``max_per_address`` from one address: over the cap it is
closed at once, before TLS), the client's first byte and the TLS handshake must come within
``handshake_timeout_s`` and the first request's headers within ``header_timeout_s`` of the
accept; idle keep-alive
connections (and a half-sent next request) close after ``keepalive_timeout_s`` (upstream's 90 s).
Counters (``admitted``, ``refused``, ``timed_out``, ``open``) are for metrics and benches.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import resource
import socket
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = [
    "ConnectionGuard",
    "GuardLimits",
    "GuardedSite",
    "raise_nofile_limit",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardLimits:
    max_connections: int = 16_384
    max_per_address: int = 1024
    handshake_timeout_s: float = 10.0
    header_timeout_s: float = 10.0
    keepalive_timeout_s: float = 90.0  # upstream's IdleTimeout (aiohttp's default: 3630 s)

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_per_address < 1:
            raise ValueError("connection caps must be >= 1")
        if min(self.handshake_timeout_s, self.header_timeout_s, self.keepalive_timeout_s) <= 0:
            raise ValueError("timeouts must be positive")


def raise_nofile_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (idle clients must not exhaust file
    descriptors before the connection caps apply); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("cannot raise RLIMIT_NOFILE from %d to %d: %s", soft, target, e)
    return soft


def _malloc_trim() -> Callable[[], None]:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return lambda: None

    def release() -> None:
        trim(0)

    return release


# glibc keeps what a burst of connections freed (TLS buffers are 256 KiB each) in its heap;
# after a burst has drained, hand it back. (Fixing the mmap threshold instead would make every
# TLS read mmap a fresh 256 KiB buffer: +25 % CPU per request.)
_TRIM_BURST = 1024
_release_memory = _malloc_trim()


class ConnectionGuard:
    """Counts open connections per address; shared by every listener of one process."""

    def __init__(self, limits: GuardLimits | None = None) -> None:
        self.limits = limits or GuardLimits()
        self._per_address: Counter[str] = Counter()
        self.open = 0
        self.admitted = 0
        self.refused = 0
        self.timed_out = 0
        self._peak = 0  # most connections open since memory was last handed back

    def admit(self, address: str) -> bool:
        if (
            self.open >= self.limits.max_connections
            or self._per_address[address] >= self.limits.max_per_address
        ):
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning(
                    "connection from %s refused: %d open (cap %d), %d from it (cap %d); "
                    "%d refused so far",
                    address,
                    self.open,
                    self.limits.max_connections,
                    self._per_address[address],
                    self.limits.max_per_address,
                    self.refused,
                )
            return False
        self.open += 1
        self.admitted += 1
        self._per_address[address] += 1
        self._peak = max(self._peak, self.open)
        return True

    def release(self, address: str) -> None:
        self.open -= 1
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]
        if self._peak >= _TRIM_BURST and self.open <= self._peak // 8:
            self._peak = self.open
            _release_memory()  # a burst has drained: give its memory back


class _GuardedHandler(RequestHandler):
    """aiohttp's connection handler, plus the first-request deadline and the release."""

    __slots__ = ("_pk_address", "_pk_deadline", "_pk_guard", "header_deadline")

    def __init__(
        self, manager: web.Server, guard: ConnectionGuard, address: str, **kwargs: Any
    ) -> None:
        super().__init__(manager, loop=asyncio.get_running_loop(), **kwargs)
        self._pk_guard: ConnectionGuard | None = guard
        self._pk_address = address
        self._pk_deadline: asyncio.TimerHandle | None = None
        self.header_deadline = 0.0  # loop time by which the first request's headers are due

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        loop = asyncio.get_running_loop()
        when = max(self.header_deadline, loop.time())
        self._pk_deadline = loop.call_at(when, self._first_request_due)

    def _first_request_due(self) -> None:
        self._pk_deadline = None
        # aiohttp counts requests whose headers were parsed; none yet: a slow or idle client.
        if self._request_count == 0 and self.transport is not None:
            if self._pk_guard is not None:
                self._pk_guard.timed_out += 1
            self.transport.abort()

    def release_slot(self) -> None:
        """Give the connection's place back (once, whichever path ends it)."""
        if self._pk_deadline is not None:
            self._pk_deadline.cancel()
            self._pk_deadline = None
        if self._pk_guard is not None:
            self._pk_guard.release(self._pk_address)
            self._pk_guard = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.release_slot()
        super().connection_lost(exc)


class GuardedSite(web.BaseSite):
    """A TCP site whose connections pass ``ConnectionGuard`` and the deadlines above.

    It accepts sockets itself: an accepted connection costs a socket and a timer until the
    client sends its first byte; only then is it given to asyncio (and TLS, whose per-connection
    buffers are large: 256 KiB), so idle connections stay cheap."""

    __slots__ = ("_handler_kwargs", "_host", "_pending", "_port", "_tasks", "guard")

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        guard: ConnectionGuard,
        ssl_context: ssl.SSLContext | None = None,
        handler_kwargs: dict[str, Any] | None = None,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host, self._port = host, port
        self.guard = guard
        self._handler_kwargs = {
            **(handler_kwargs or {}),
            "keepalive_timeout": guard.limits.keepalive_timeout_s,
        }
        self._tasks: set[asyncio.Task[None]] = set()
        # accepted, waiting for a first byte: fd -> (socket, address, deadline timer)
        self._pending: dict[int, tuple[socket.socket, str, asyncio.TimerHandle]] = {}

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.create_server((self._host, self._port), family=family, backlog=self._backlog)
        sock.setblocking(False)
        listening = _Listening(sock)
        self._server = listening  # type: ignore[assignment]  # what runner.addresses reads
        listening.task = asyncio.get_running_loop().create_task(self._accept_loop(sock))

    async def stop(self) -> None:
        await super().stop()
        loop = asyncio.get_running_loop()
        for fd, (sock, address, timer) in list(self._pending.items()):
            timer.cancel()
            loop.remove_reader(fd)
            sock.close()
            self.guard.release(address)
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(sock)
            except asyncio.CancelledError:
                raise
            except OSError as e:
                if sock.fileno() < 0:
                    return  # closed by stop()
                log.warning("accept failed (%s); retrying", e)
                await asyncio.sleep(0.1)  # EMFILE and friends: let connections drain
                continue
            address = str(peer[0]) if peer else ""
            if not self.guard.admit(address):
                conn.close()
                continue
            conn.setblocking(False)
            fd = conn.fileno()
            timer = loop.call_later(self.guard.limits.handshake_timeout_s, self._expire, fd)
            self._pending[fd] = (conn, address, timer)
            loop.add_reader(fd, self._readable, fd, loop.time())

    def _expire(self, fd: int) -> None:
        """No first byte within the handshake deadline: an idle or half-open connection."""
        item = self._pending.pop(fd, None)
        if item is None:
            return
        sock, address, _ = item
        asyncio.get_running_loop().remove_reader(fd)
        sock.close()
        self.guard.release(address)
        self.guard.timed_out += 1

    def _readable(self, fd: int, accepted_at: float) -> None:
        item = self._pending.pop(fd, None)
        loop = asyncio.get_running_loop()
        loop.remove_reader(fd)
        if item is None:
            return
        sock, address, timer = item
        timer.cancel()
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            first = b""
        if not first:  # the client left without a byte: nothing to hand over
            sock.close()
            self.guard.release(address)
            return
        task = loop.create_task(self._serve(sock, address, accepted_at))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, sock: socket.socket, address: str, accepted_at: float) -> None:
        server = self._runner.server
        assert server is not None
        limits = self.guard.limits
        loop = asyncio.get_running_loop()
        try:
            handler = _GuardedHandler(server, self.guard, address, **self._handler_kwargs)
        except BaseException:
            self.guard.release(address)
            sock.close()
            raise
        handler.header_deadline = accepted_at + limits.header_timeout_s
        try:
            if self._ssl_context is not None:
                remaining = accepted_at + limits.handshake_timeout_s - loop.time()
                await loop.connect_accepted_socket(
                    lambda: handler,
                    sock,
                    ssl=self._ssl_context,
                    ssl_handshake_timeout=max(0.1, remaining),
                )
            else:
                await loop.connect_accepted_socket(lambda: handler, sock)
        except (OSError, ssl.SSLError, TimeoutError, asyncio.CancelledError):
            handler.release_slot()
            sock.close()


class _Listening:
    """Stands in for ``asyncio.Server`` on the site (``sockets``, ``close``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sockets = [sock]
        self.task: asyncio.Task[None] | None = None

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        for sock in self.sockets:
            sock.close()

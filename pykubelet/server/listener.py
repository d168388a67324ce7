"""The listening socket's guard: what an unauthenticated client can hold before any request.

aiohttp's own site accepts every connection, lets TLS handshakes take 60 s and waits for a
first request as long as its keep-alive timeout (3630 s). Here each accepted TCP connection is
counted (``max_connections`` in total, ``max_per_address`` from one address: over the cap it is
closed at once, before TLS), the TLS handshake must finish within ``handshake_timeout_s`` and
the first request's headers within ``header_timeout_s`` of the accept; idle keep-alive
connections (and a half-sent next request) close after ``keepalive_timeout_s`` (upstream's 90 s).
Counters (``refused``, ``timed_out``, ``open``) are for metrics and benches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import ssl
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = ["ConnectionGuard", "GuardLimits", "GuardedSite", "raise_nofile_limit"]

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


class ConnectionGuard:
    """Counts open connections per address; shared by every listener of one process."""

    def __init__(self, limits: GuardLimits | None = None) -> None:
        self.limits = limits or GuardLimits()
        self._per_address: Counter[str] = Counter()
        self.open = 0
        self.refused = 0
        self.timed_out = 0

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
        self._per_address[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open -= 1
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]


class _GuardedHandler(RequestHandler):
    """aiohttp's connection handler, plus the first-request deadline and the release."""

    __slots__ = ("_pk_address", "_pk_deadline", "_pk_guard")

    def __init__(
        self, manager: web.Server, guard: ConnectionGuard, address: str, **kwargs: Any
    ) -> None:
        super().__init__(manager, loop=asyncio.get_running_loop(), **kwargs)
        self._pk_guard: ConnectionGuard | None = guard
        self._pk_address = address
        self._pk_deadline: asyncio.TimerHandle | None = None

    def arm(self, delay_s: float) -> None:
        self._pk_deadline = asyncio.get_running_loop().call_later(delay_s, self._first_request_due)

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


class _Gate(asyncio.Protocol):
    """The protocol of a just-accepted TCP connection: admit or refuse, then hand over."""

    def __init__(self, site: GuardedSite) -> None:
        self._site = site

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if not self._site.guard.admit(address):
            transport.abort()
            return
        transport.pause_reading()  # nothing is read until TLS (or aiohttp) owns the socket
        self._site.hand_over(transport, address)

    def connection_lost(self, exc: BaseException | None) -> None:
        pass  # before hand-over the site's task owns the cleanup


class GuardedSite(web.BaseSite):
    """A TCP site whose connections pass ``ConnectionGuard`` and the deadlines above."""

    __slots__ = ("_handler_kwargs", "_host", "_port", "_tasks", "guard")

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

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Gate(self), self._host, self._port, backlog=self._backlog, reuse_address=True
        )

    async def stop(self) -> None:
        await super().stop()
        for task in list(self._tasks):
            task.cancel()

    def hand_over(self, transport: asyncio.Transport, address: str) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(transport, address))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, transport: asyncio.Transport, address: str) -> None:
        server = self._runner.server
        assert server is not None
        limits = self.guard.limits
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            handler = _GuardedHandler(server, self.guard, address, **self._handler_kwargs)
        except BaseException:
            self.guard.release(address)
            transport.abort()
            raise
        conn: asyncio.BaseTransport = transport
        if self._ssl_context is not None:
            try:
                tls = await loop.start_tls(
                    transport,
                    handler,
                    self._ssl_context,
                    server_side=True,
                    ssl_handshake_timeout=limits.handshake_timeout_s,
                )
            except (OSError, ssl.SSLError, TimeoutError, asyncio.CancelledError):
                handler.release_slot()
                transport.abort()
                return
            if tls is None or tls.is_closing():  # the peer went away during the handshake
                handler.release_slot()
                transport.abort()
                return
            conn = tls
        else:
            transport.set_protocol(handler)
        remaining = limits.header_timeout_s - (loop.time() - started)
        handler.connection_made(conn)
        handler.arm(max(0.0, remaining))
        if self._ssl_context is None:
            with contextlib.suppress(RuntimeError):
                transport.resume_reading()

"""The listening socket's guard: what an unauthenticated client can hold before any request.

aiohttp's own site accepts every connection, lets TLS handshakes take 60 s and waits for a
first request as long as its keep-alive timeout (3630 s). Here each accepted TCP connection is
counted (``max_connections`` in total, ``max_per_address`` from one address: over the cap it is
closed at once, before TLS), the client's first byte and the TLS handshake must come within
``handshake_timeout_s`` (a connection without a first byte is cut somewhere in its last quarter,
so that a crowd is not cut at once) and the first request's headers within ``header_timeout_s``
of the accept; idle keep-alive
connections (and a half-sent next request) close after ``keepalive_timeout_s`` (upstream's 90 s).
Counters (``admitted``, ``refused``, ``timed_out``, ``open``) are for metrics and benches.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import ctypes.util
import functools
import logging
import math
import random
import resource
import socket
import ssl
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from pykubelet.server.leanpath import LeanAnswer, LeanHead, Verdict, encode_answer, read_lean_head

__all__ = [
    "LEAN_PATH",
    "ConnectionGuard",
    "DeadlineWheel",
    "GuardLimits",
    "GuardedSite",
    "LeanPath",
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
_BATCH = 128  # connections accepted, or deadlines run, per turn of the event loop
_SPREAD = 0.25  # idle connections are cut between 3/4 and all of the handshake deadline
_release_memory = _malloc_trim()


class DeadlineWheel:
    """Many deadlines of the same few lengths, kept in buckets of ``resolution_s``.

    Adding or dropping one is a dict operation; one timer per site, set for the earliest
    bucket, sweeps the due ones. (A ``call_later`` per connection costs a TimerHandle, a heap push
    whose comparisons run in Python, and a cancellation left in the heap: with 10,000 idle
    clients reconnecting, that was much of the event loop's work.) A deadline fires up to
    ``resolution_s`` early, never late.
    """

    __slots__ = ("_buckets", "_resolution", "_where")

    def __init__(self, resolution_s: float) -> None:
        self._resolution = resolution_s
        self._buckets: dict[int, dict[object, Callable[[], None]]] = {}
        self._where: dict[object, int] = {}

    def __len__(self) -> int:
        return len(self._where)

    def add(self, key: object, deadline: float, on_due: Callable[[], None]) -> None:
        self.discard(key)
        slot = math.floor(deadline / self._resolution)
        self._buckets.setdefault(slot, {})[key] = on_due
        self._where[key] = slot

    def discard(self, key: object) -> None:
        slot = self._where.pop(key, None)
        if slot is not None:
            bucket = self._buckets[slot]
            del bucket[key]
            if not bucket:
                del self._buckets[slot]

    def next_due(self) -> float | None:
        """When the earliest bucket is due (None: no deadlines)."""
        return min(self._buckets) * self._resolution if self._buckets else None

    def pop_due(self, now: float) -> list[Callable[[], None]]:
        """The callbacks of every deadline at or before ``now``, forgotten here."""
        last = math.floor(now / self._resolution + 1e-6)  # a timer set for a slot is due
        due: list[Callable[[], None]] = []
        for slot in [k for k in self._buckets if k <= last]:
            bucket = self._buckets.pop(slot)
            for key in bucket:
                del self._where[key]
            due.extend(bucket.values())
        return due


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


class LeanServer(Protocol):
    """The port's front door, as the lean path uses it (``middleware.FrontDoor``)."""

    async def serve_lean(
        self, head: LeanHead, answer: LeanAnswer, remote: str, peer_cert_der: bytes | None
    ) -> LeanAnswer: ...


@dataclass(frozen=True, slots=True)
class LeanPath:
    """What a port answers without aiohttp: per target, the handler's answer (None: not a
    lean answer right now, aiohttp's handler writes it), authorized, audited and counted by
    ``server``."""

    server: LeanServer
    answers: Mapping[str, Callable[[], LeanAnswer | None]]


LEAN_PATH = web.AppKey("pykubelet.lean_path", LeanPath)


class _AnswerWrites:
    """A site's lean answers, written once per turn of the loop, all together: the turn's
    answers are made first, then encrypted and sent in a row, with their code and data warm
    (measured: ~15 % of a ``/healthz`` answer's CPU). One list, so each connection's answers
    keep their order."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[tuple[asyncio.Transport, bytes]] = []

    def write(self, transport: asyncio.Transport, data: bytes) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append((transport, data))

    def flush(self) -> None:
        batch, self._pending = self._pending, []
        for transport, data in batch:
            if transport.is_closing():
                continue
            try:
                transport.write(data)
            except Exception:  # supervision point: one connection's failure is not the batch's
                log.exception("writing a lean answer failed")
                transport.abort()


# Pipelined bytes held while one lean answer is being made; beyond this the connection stops
# reading until it is answered (a client that sends without reading holds no more than this).
_LEAN_BACKLOG = 64 << 10


class _GuardedHandler(RequestHandler):
    """aiohttp's connection handler, plus the first-request deadline, the release, and the
    lean path: while a connection sends only lean requests (``leanpath.read_lean_head``) they
    are answered here, one at a time and in order; at the first other request the connection
    and every byte from that request on go to aiohttp for good."""

    __slots__ = (
        "_pk_address",
        "_pk_buf",
        "_pk_der",
        "_pk_guard",
        "_pk_lane",
        "_pk_lean_served",
        "_pk_paused",
        "_pk_site",
        "_pk_task",
        "_pk_writes",
        "header_deadline",
    )

    def __init__(
        self,
        manager: web.Server,
        site: GuardedSite,
        address: str,
        lane: LeanPath | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=asyncio.get_running_loop(), **kwargs)
        self._pk_site: GuardedSite | None = site
        self._pk_guard: ConnectionGuard | None = site.guard
        self._pk_address = address
        self._pk_lane = lane if lane is not None and lane.answers else None
        self._pk_buf = bytearray()
        self._pk_der: bytes | bool | None = False  # the client's certificate; False: not read yet
        self._pk_task: asyncio.Task[None] | None = None
        self._pk_lean_served = 0
        self._pk_paused = False  # reading paused by the lean path (a backlog of requests)
        self._pk_writes = site.answer_writes
        self.header_deadline = 0.0  # loop time by which the first request's headers are due

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._pk_site is not None:
            self._pk_site.deadline(self, self.header_deadline, self._first_request_due)

    def _first_request_due(self) -> None:
        # aiohttp counts requests whose headers were parsed; none yet: a slow or idle client.
        if self._request_count == 0 and self._pk_lean_served == 0 and self.transport is not None:
            if self._pk_guard is not None:
                self._pk_guard.timed_out += 1
            self.transport.abort()

    # ----- the lean path -----

    def data_received(self, data: bytes) -> None:
        if self._pk_lane is None:
            super().data_received(data)
            return
        self._pk_buf += data
        if self._pk_task is None:
            self._lean_next()
        elif len(self._pk_buf) > _LEAN_BACKLOG:
            self._lean_pause(True)

    def _lean_next(self) -> None:
        """Start answering the request at the head of the buffer, if it is lean and complete;
        hand the connection over if it is not lean."""
        lane, transport = self._pk_lane, self.transport
        if lane is None or transport is None or self._pk_task is not None:
            return
        if self._paused:  # the client is not reading its answers: wait until it does
            self._lean_pause(True)
            return
        got = read_lean_head(self._pk_buf, lane.answers)
        if got is Verdict.NEED_MORE:
            self._lean_pause(False)
            return
        answer = None if got is Verdict.DECLINE else lane.answers[got[0].target]()
        if answer is None or isinstance(got, Verdict):
            self._lean_hand_over()
            return
        head, end = got
        del self._pk_buf[:end]
        self._pk_lean_served += 1
        # busy, not idle: aiohttp's keep-alive timer must not close it while it is answered
        self._next_keepalive_close_time = self._loop.time() + self.keepalive_timeout
        der = self._pk_der
        if der is False:  # read once: renegotiation is off (tls.py), it cannot change
            ssl_obj = transport.get_extra_info("ssl_object")
            der = self._pk_der = ssl_obj.getpeercert(True) if ssl_obj is not None else None
        assert not isinstance(der, bool)
        self._pk_task = self._loop.create_task(self._lean_answer(lane, head, answer, der))

    async def _lean_answer(
        self, lane: LeanPath, head: LeanHead, answer: LeanAnswer, der: bytes | None
    ) -> None:
        try:
            answer = await lane.server.serve_lean(head, answer, self._pk_address, der)
        except Exception:  # supervision point: the front door answers errors itself; not this
            log.exception("lean request failed")
            self.force_close()
            return
        finally:
            self._pk_task = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._pk_writes.write(transport, encode_answer(answer, head.version))
        # idle from now: aiohttp's keep-alive timer (armed when the connection was made, and
        # closing it when no request is being handled) counts from this answer, as it counts
        # from its own; a half-sent request after it is idle too
        self._next_keepalive_close_time = self._loop.time() + self.keepalive_timeout
        if self._pk_buf:
            self._lean_next()
        else:
            self._lean_pause(False)

    def _lean_hand_over(self) -> None:
        self._pk_writes.flush()  # the lean answers before whatever aiohttp writes
        self._pk_lane = None
        data, self._pk_buf = bytes(self._pk_buf), bytearray()
        self._lean_pause(False)
        if data:
            super().data_received(data)

    def _lean_pause(self, pause: bool) -> None:
        if pause != self._pk_paused and self.transport is not None:
            self._pk_paused = pause
            if pause:
                self._pause_transport_reading()
            else:
                self._resume_transport_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._pk_lane is not None and self._pk_task is None and self._pk_buf:
            self._lean_next()

    def release_slot(self) -> None:
        """Give the connection's place back (once, whichever path ends it)."""
        if self._pk_site is not None:
            self._pk_site.forget_deadline(self)
            self._pk_site = None
        if self._pk_guard is not None:
            self._pk_guard.release(self._pk_address)
            self._pk_guard = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.release_slot()
        if self._pk_task is not None:
            self._pk_task.cancel()  # as aiohttp cancels its handler (handler_cancellation)
        self._pk_lane = None
        super().connection_lost(exc)


class GuardedSite(web.BaseSite):
    """A TCP site whose connections pass ``ConnectionGuard`` and the deadlines above.

    It accepts sockets itself, as many as are queued each time the listening socket is readable:
    an accepted connection costs a socket and a place in the site's ``DeadlineWheel`` until the
    client sends its first byte; only then is it given to asyncio (and TLS, whose per-connection
    buffers are large: 256 KiB), so idle connections stay cheap."""

    __slots__ = (
        "_due",
        "_handler_kwargs",
        "_host",
        "_lane",
        "_pending",
        "_port",
        "_tasks",
        "_tick",
        "_wheel",
        "answer_writes",
        "guard",
    )

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
        # accepted, waiting for a first byte: fd -> (socket, address)
        self._pending: dict[int, tuple[socket.socket, str]] = {}
        limits = guard.limits
        # how early a deadline may fire: a quarter second, less for deadlines of a few seconds
        resolution = min(0.25, limits.handshake_timeout_s / 8, limits.header_timeout_s / 8)
        self._wheel = DeadlineWheel(resolution)
        self._tick: asyncio.TimerHandle | None = None
        self._due: collections.deque[Callable[[], None]] = collections.deque()
        self.answer_writes = _AnswerWrites()
        app = getattr(runner, "app", None)
        self._lane = app.get(LEAN_PATH) if isinstance(app, web.Application) else None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    # ----- deadlines (one timer for the site) -----

    def deadline(self, key: object, when: float, on_due: Callable[[], None]) -> None:
        self._wheel.add(key, when, on_due)
        self._arm()

    def forget_deadline(self, key: object) -> None:
        self._wheel.discard(key)

    def _arm(self) -> None:
        """The site's one timer, for the earliest bucket (moved only when one comes earlier)."""
        due = self._wheel.next_due()
        if due is None or (self._tick is not None and self._tick.when() <= due):
            return
        if self._tick is not None:
            self._tick.cancel()
        self._tick = asyncio.get_running_loop().call_at(due, self._sweep)

    def _sweep(self) -> None:
        self._tick = None
        self._due.extend(self._wheel.pop_due(asyncio.get_running_loop().time()))
        self._run_due()

    def _run_due(self) -> None:
        """Expire a batch, then let the loop serve others: 10,000 idle clients cut at once
        would otherwise hold it for tens of milliseconds in one go."""
        for _ in range(min(len(self._due), _BATCH)):
            self._due.popleft()()
        if self._due:
            asyncio.get_running_loop().call_soon(self._run_due)
        else:
            self._arm()

    # ----- listening -----

    async def start(self) -> None:
        await super().start()
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.create_server((self._host, self._port), family=family, backlog=self._backlog)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        self._server = _Listening(sock, loop)  # type: ignore[assignment]  # runner.addresses
        loop.add_reader(sock.fileno(), self._accept_queued, sock)

    async def stop(self) -> None:
        await super().stop()
        loop = asyncio.get_running_loop()
        for fd, (sock, address) in list(self._pending.items()):
            loop.remove_reader(fd)
            sock.close()
            self.guard.release(address)
        self._pending.clear()
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        for task in list(self._tasks):
            task.cancel()

    def _accept_queued(self, sock: socket.socket) -> None:
        """Accept what the kernel has queued, a batch per wake-up (the rest on the next turn
        of the loop, so that a reconnecting crowd does not hold it)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        timeout = self.guard.limits.handshake_timeout_s
        for _ in range(_BATCH):
            try:
                conn, peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if sock.fileno() < 0:
                    return  # closed by stop()
                # EMFILE and friends: stop accepting for a moment, let connections drain
                log.warning("accept failed (%s); retrying", e)
                loop.remove_reader(sock.fileno())
                loop.call_later(0.1, self._resume_accepting, sock)
                return
            address = str(peer[0]) if peer else ""
            if not self.guard.admit(address):
                conn.close()
                continue
            conn.setblocking(False)
            fd = conn.fileno()
            self._pending[fd] = (conn, address)
            # spread over the last quarter: a crowd that connected at once is not cut (and
            # does not reconnect) at once
            deadline = now + timeout * (1.0 - _SPREAD * random.random())
            self.deadline(fd, deadline, functools.partial(self._expire, fd, conn))
            loop.add_reader(
                fd, self._readable, fd, deadline - self.guard.limits.handshake_timeout_s
            )

    def _resume_accepting(self, sock: socket.socket) -> None:
        if sock.fileno() >= 0:
            asyncio.get_running_loop().add_reader(sock.fileno(), self._accept_queued, sock)

    def _expire(self, fd: int, conn: socket.socket) -> None:
        """No first byte within the handshake deadline: an idle or half-open connection."""
        item = self._pending.get(fd)
        if item is None or item[0] is not conn:
            return  # handed over or gone meanwhile (the fd may be another connection's now)
        del self._pending[fd]
        sock, address = item
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
        self._wheel.discard(fd)
        sock, address = item
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
            handler = _GuardedHandler(server, self, address, self._lane, **self._handler_kwargs)
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

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sockets = [sock]
        self._loop = loop

    def close(self) -> None:
        for sock in self.sockets:
            if sock.fileno() >= 0:
                self._loop.remove_reader(sock.fileno())
            sock.close()

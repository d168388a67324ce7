"""Shared log-file followers: one watcher per file, however many clients follow it.

A ``FileTail`` is woken by inotify on its directory (or, where inotify is unavailable, polls
with one ``stat`` per interval), reads new complete lines once, and hands the same bytes to
every subscriber.
Rotation (a new inode at the path) is followed: the old file is read to its end, then the new
one from its start. When the file has been idle for ``liveness_interval_s`` the tail asks
``alive()`` (the runtime's container state) once for all subscribers; when the container has
ended it reads to EOF and closes every subscription.

Subscribers track ``(inode, offset)``; bytes they have already read themselves (the history
part of a request) are skipped, and a gap (a subscriber that lagged past its buffer cap) is
read back from the file by that subscriber alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from pykubelet.core.clock import Clock, SystemClock
from pykubelet.host.inotify import DirectoryWatcher

__all__ = ["Chunk", "FileTail", "Subscription", "TailHub"]

log = logging.getLogger(__name__)

_READ_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class Chunk:
    """Complete lines read from ``inode`` starting at byte ``offset``."""

    inode: int
    offset: int
    data: bytes


class Subscription:
    """One follower's view of a ``FileTail``: a queue of chunks, then ``None`` at the end."""

    def __init__(self, tail: FileTail, max_buffered_bytes: int) -> None:
        self._tail = tail
        self._queue: deque[Chunk] = deque()
        self._buffered = 0
        self._max = max_buffered_bytes
        self._wake = asyncio.Event()
        # The inode the tail was reading when this follower joined (0: no file yet).
        self.start_inode = tail._inode
        self.closed = False
        self.lagged = False

    def _push(self, chunk: Chunk) -> None:
        if self._buffered + len(chunk.data) > self._max:
            # Too slow a reader: drop what it has not taken; it re-reads the gap from the file.
            self._queue.clear()
            self._buffered = 0
            self.lagged = True
        self._queue.append(chunk)
        self._buffered += len(chunk.data)
        self._wake.set()

    def _close(self) -> None:
        self.closed = True
        self._wake.set()

    async def next(self, timeout_s: float | None = None) -> Chunk | None:
        """The next chunk; ``None`` once the tail has ended and the queue is drained.
        Raises ``TimeoutError`` if nothing arrives within ``timeout_s``."""
        while not self._queue:
            if self.closed:
                return None
            self._wake.clear()
            if timeout_s is None:
                await self._wake.wait()
            else:
                async with asyncio.timeout(timeout_s):
                    await self._wake.wait()
        chunk = self._queue.popleft()
        self._buffered -= len(chunk.data)
        return chunk


class FileTail:
    """The single watcher of one log file (see the module docstring)."""

    def __init__(
        self,
        path: str,
        alive: Callable[[], Awaitable[bool]],
        *,
        clock: Clock,
        poll_interval_s: float,
        liveness_interval_s: float,
    ) -> None:
        self.path = path
        self._alive = alive
        self._clock = clock
        self._poll = poll_interval_s
        self._liveness = liveness_interval_s
        self.subscribers: set[Subscription] = set()
        self._fd: int | None = None
        self._inode = 0
        self._offset = 0
        self._pending = b""  # a line not yet complete
        self.ended = False
        self._changed = asyncio.Event()
        self.notified = False  # True while an inotify watch wakes this tail

    def wake(self) -> None:
        """Something changed at the path (inotify); read now."""
        self._changed.set()

    async def _wait(self) -> None:
        if not self.notified:
            await self._clock.sleep(self._poll)
            return
        # Woken by inotify; the liveness interval doubles as a safety poll.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._liveness):
                await self._changed.wait()
        self._changed.clear()

    def _open_at_end(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        st = os.fstat(fd)
        self._fd, self._inode, self._offset, self._pending = fd, st.st_ino, st.st_size, b""

    def _broadcast(self, chunk: Chunk) -> None:
        for sub in list(self.subscribers):
            sub._push(chunk)

    def _read_available(self) -> int:
        """Read the open file to EOF, broadcasting complete lines; return bytes read."""
        if self._fd is None:
            return 0
        total = 0
        while True:
            data = os.pread(self._fd, _READ_SIZE, self._offset + len(self._pending))
            if not data:
                return total
            total += len(data)
            buf = self._pending + data
            cut = buf.rfind(b"\n") + 1
            if cut:
                self._broadcast(Chunk(self._inode, self._offset, buf[:cut]))
                self._offset += cut
            self._pending = buf[cut:]
            if len(data) < _READ_SIZE:
                return total

    def _rotated(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False  # removed: keep reading the old file until a new one appears
        return st.st_ino != self._inode or self._fd is None

    def _switch_file(self) -> None:
        self._read_available()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        self._fd, self._inode, self._offset, self._pending = fd, os.fstat(fd).st_ino, 0, b""

    async def run(self) -> None:
        try:
            idle_since = self._clock.monotonic()
            while True:
                if self._rotated():
                    self._switch_file()
                self._changed.clear()
                if self._read_available():
                    idle_since = self._clock.monotonic()
                    await asyncio.sleep(0)  # let followers write before reading more
                    continue
                if self._clock.monotonic() - idle_since >= self._liveness:
                    if not await self._alive():
                        if self._rotated():
                            self._switch_file()
                        self._read_available()
                        return
                    idle_since = self._clock.monotonic()
                await self._wait()
        finally:
            self.ended = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            for sub in list(self.subscribers):
                sub._close()


class TailHub:
    """Owns the ``FileTail``s, keyed by path; a tail lives while it has subscribers."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        poll_interval_s: float = 0.01,
        liveness_interval_s: float = 1.0,
        max_buffered_bytes: int = 16 << 20,
        use_inotify: bool = True,
    ) -> None:
        self._clock = clock or SystemClock()
        self._poll = poll_interval_s
        self._liveness = liveness_interval_s
        self._max = max_buffered_bytes
        self._tails: dict[str, tuple[FileTail, asyncio.Task[None]]] = {}
        self._use_inotify = use_inotify
        self._watcher: DirectoryWatcher | None = None
        self._watcher_tried = False

    def _directory_watcher(self) -> DirectoryWatcher | None:
        if self._use_inotify and not self._watcher_tried:
            self._watcher_tried = True
            self._watcher = DirectoryWatcher.create()
        return self._watcher

    def close(self) -> None:
        """Stop every tail and release the inotify descriptor."""
        for _tail, task in list(self._tails.values()):
            task.cancel()
        self._tails.clear()
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None

    @property
    def lagged(self) -> int:
        """Followers that fell behind their buffer cap and re-read from the file."""
        return sum(sub.lagged for tail, _ in self._tails.values() for sub in tail.subscribers)

    @property
    def inotify_watches(self) -> int:
        """How many directory watches are open (0 when polling)."""
        return self._watcher.watches if self._watcher is not None else 0

    @property
    def tails(self) -> int:
        """How many files are being watched (one per followed file, whatever the followers)."""
        return len(self._tails)

    @contextlib.contextmanager
    def subscribe(self, path: str, alive: Callable[[], Awaitable[bool]]) -> Iterator[Subscription]:
        """Follow ``path``; ``alive`` is used only if this call creates the tail."""
        entry = self._tails.get(path)
        if entry is None or entry[0].ended:
            tail = FileTail(
                path,
                alive,
                clock=self._clock,
                poll_interval_s=self._poll,
                liveness_interval_s=self._liveness,
            )
            watcher = self._directory_watcher()
            if watcher is not None and watcher.add(path, tail.wake):
                tail.notified = True
            task = asyncio.create_task(self._supervise(tail), name=f"log-tail {path}")
            entry = (tail, task)
            self._tails[path] = entry
            tail._open_at_end()  # position now, so a subscriber's history read meets it
        tail, task = entry
        sub = Subscription(tail, self._max)
        tail.subscribers.add(sub)
        try:
            yield sub
        finally:
            tail.subscribers.discard(sub)
            if not tail.subscribers and self._tails.get(path) is entry:
                del self._tails[path]
                task.cancel()
                self._unwatch(tail)

    def _unwatch(self, tail: FileTail) -> None:
        if tail.notified and self._watcher is not None:
            self._watcher.remove(tail.path, tail.wake)
            tail.notified = False

    async def _supervise(self, tail: FileTail) -> None:
        try:
            await tail.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # supervision point: a failing tail ends its followers, not the agent
            log.exception("following %s failed", tail.path)
        finally:
            entry = self._tails.get(tail.path)
            if entry is not None and entry[0] is tail:
                del self._tails[tail.path]
            self._unwatch(tail)

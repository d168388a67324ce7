"""Time as an injected dependency, so back-off and probe logic is testable without sleeping."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """Monotonic time for intervals, wall time for timestamps, and a cancellable sleep."""

    def monotonic(self) -> float: ...

    def now(self) -> float:
        """Wall-clock seconds since the epoch (for status timestamps)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that only moves when a test calls ``advance``; sleepers wake in time order."""

    def __init__(self, start: float = 1_000.0, wall_offset: float = 1_700_000_000.0) -> None:
        self._t = start
        self._wall_offset = wall_offset
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self._t

    def now(self) -> float:
        return self._t + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._t + max(0.0, seconds), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose deadline has passed, in order."""
        target = self._t + seconds
        while True:
            due = sorted(
                (s for s in self._sleepers if s[0] <= target and not s[1].done()),
                key=lambda s: s[0],
            )
            if not due:
                break
            deadline, fut = due[0]
            self._t = max(self._t, deadline)
            fut.set_result(None)
            self._sleepers = [s for s in self._sleepers if s[1] is not fut]
            for _ in range(5):
                await asyncio.sleep(0)
        self._t = target
        await asyncio.sleep(0)

"""A bounded, queue-backed async iterator: the shape ``StreamIO`` wants for stdin and resize."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

__all__ = ["QueueIterator"]

T = TypeVar("T")


class QueueIterator(AsyncIterator[T], Generic[T]):
    """``await put(item)`` waits while ``max_items`` are unread or, with ``weight``, while
    ``max_weight`` (e.g. bytes) is unread, so a fast client is paced by the consumer (the socket
    stops being read). One item heavier than the budget is still taken when the queue is empty.
    ``end()`` finishes after what is queued."""

    def __init__(
        self,
        max_items: int = 64,
        *,
        weight: Callable[[T], int] | None = None,
        max_weight: int = 0,
    ) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._max = max_items
        self._weight = weight
        self._max_weight = max_weight
        self._queued_weight = 0
        self.ended = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def full(self) -> bool:
        """Whether ``put`` would wait now."""
        if not self._items:
            return False
        if len(self._items) >= self._max:
            return True
        return self._weight is not None and self._queued_weight >= self._max_weight

    async def put(self, item: T) -> None:
        while self.full() and not self.ended:
            self._writable.clear()
            await self._writable.wait()
        if not self.ended:
            self._items.append(item)
            if self._weight is not None:
                self._queued_weight += self._weight(item)
            self._readable.set()

    def end(self) -> None:
        self.ended = True
        self._readable.set()
        self._writable.set()

    def __aiter__(self) -> QueueIterator[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self.ended:
                raise StopAsyncIteration
            self._readable.clear()
            await self._readable.wait()
        item = self._items.popleft()
        if self._weight is not None:
            self._queued_weight -= self._weight(item)
        self._writable.set()
        return item

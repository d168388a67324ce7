"""A bounded, queue-backed async iterator: the shape ``StreamIO`` wants for stdin and resize."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

__all__ = ["QueueIterator"]

T = TypeVar("T")


class QueueIterator(AsyncIterator[T], Generic[T]):
    """``await put(item)`` waits while ``max_items`` are unread, so a fast client is paced by
    the consumer (the socket stops being read). ``end()`` finishes after what is queued."""

    def __init__(self, max_items: int = 64) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._max = max_items
        self.ended = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    async def put(self, item: T) -> None:
        while len(self._items) >= self._max and not self.ended:
            self._writable.clear()
            await self._writable.wait()
        if not self.ended:
            self._items.append(item)
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
        self._writable.set()
        return item

"""A queue-backed async iterator: the shape ``StreamIO`` wants for stdin and resize."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

__all__ = ["QueueIterator"]

T = TypeVar("T")


class QueueIterator(AsyncIterator[T], Generic[T]):
    """Items put with ``put``; ``end()`` finishes the iteration after what is queued."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[T | None] = asyncio.Queue()
        self.ended = False

    def put(self, item: T) -> None:
        if not self.ended:
            self._queue.put_nowait(item)

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self._queue.put_nowait(None)

    def __aiter__(self) -> QueueIterator[T]:
        return self

    async def __anext__(self) -> T:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # stay finished for later readers
            raise StopAsyncIteration
        return item

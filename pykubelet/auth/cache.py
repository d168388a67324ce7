"""A small TTL cache for webhook answers, keyed by a digest so tokens are never kept in memory.

Time comes from an injected ``Clock`` (monotonic), so expiry is tested without sleeping. The
cache is bounded: beyond ``max_entries`` the oldest entry is evicted (insertion order).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Generic, TypeVar

from pykubelet.core.clock import Clock

__all__ = ["TTLCache", "digest_key"]

V = TypeVar("V")


def digest_key(*parts: str) -> str:
    """A fixed-size key for the given strings (tokens, user + attributes)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


class TTLCache(Generic[V]):
    def __init__(self, clock: Clock, *, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._clock = clock
        self._max = max_entries
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if self._clock.monotonic() >= expires:
            del self._items[key]
            return None
        return value

    def put(self, key: str, value: V, ttl: float) -> None:
        if ttl <= 0:
            return
        self._items.pop(key, None)
        self._items[key] = (self._clock.monotonic() + ttl, value)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

"""Slowing down repeated authentication failures from one address (sans-IO, time passed in).

Each source address has a token bucket of ``burst`` tokens refilled at ``rate`` per second. A
failed authentication (401) takes a token. While an address has less than one token, its
requests are refused with 429 and ``Retry-After`` *before* any credential is checked, so a
guesser gains nothing by trying faster; a successful authentication costs nothing. A request
with a client certificate that *verifies* against the client CA is never limited (there is
nothing to guess in it), so the API server is not slowed by others sharing its address; an
unverified one (self-signed, another CA) counts as a failure like a bad token
(``server/middleware.py`` applies this). Other
addresses are unaffected. Memory is bounded: at most ``max_addresses`` buckets are kept, and a
bucket that has refilled completely is forgotten.

Defaults: 10 failures in a burst, then one attempt every 2 s (``rate`` 0.5/s).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["AuthFailureLimiter", "LimiterSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LimiterSettings:
    burst: float = 10.0
    rate: float = 0.5  # tokens per second
    max_addresses: int = 10_000

    def __post_init__(self) -> None:
        if self.burst < 1:
            raise ValueError("burst must be >= 1")
        if self.rate <= 0:
            raise ValueError("rate must be > 0")
        if self.max_addresses < 1:
            raise ValueError("max_addresses must be >= 1")


class AuthFailureLimiter:
    def __init__(self, settings: LimiterSettings | None = None) -> None:
        self.settings = settings or LimiterSettings()
        # address -> (tokens, time of last update)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.refused = 0  # requests answered 429, for metrics

    def _tokens(self, address: str, now: float) -> float:
        item = self._buckets.get(address)
        if item is None:
            return self.settings.burst
        tokens, last = item
        return min(self.settings.burst, tokens + max(0.0, now - last) * self.settings.rate)

    def retry_after(self, address: str, now: float, *, count: bool = True) -> float:
        """0 when a request from ``address`` may be authenticated now, else the seconds until it
        may (the caller answers 429 with ``Retry-After: ceil(value)``). ``count`` False: only
        look (the caller counts a refusal with ``refuse()`` if it does refuse)."""
        tokens = self._tokens(address, now)
        if tokens >= 1.0:
            if tokens >= self.settings.burst:
                self._buckets.pop(address, None)
            return 0.0
        if count:
            self.refused += 1
        return (1.0 - tokens) / self.settings.rate

    def refuse(self) -> None:
        self.refused += 1

    def retry_after_header(self, seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))

    def record_failure(self, address: str, now: float) -> None:
        tokens = max(0.0, self._tokens(address, now) - 1.0)
        self._buckets.pop(address, None)
        self._buckets[address] = (tokens, now)
        while len(self._buckets) > self.settings.max_addresses:
            self._buckets.popitem(last=False)

    def tracked(self) -> int:
        return len(self._buckets)

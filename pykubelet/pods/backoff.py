"""The kubelet's per-key exponential back-off (client-go flowcontrol.Backoff), pure and clocked.

``next(key, event_time)`` starts at ``initial_s`` and doubles up to ``max_s``; an entry not
touched for more than ``2 * max_s`` starts over. ``in_backoff_since(key, event_time)`` is true
while ``now - event_time`` is shorter than the current delay. Container restarts use 10 s / 300 s,
so a container that ran for ten minutes restarts at once. Times are wall-clock seconds
(``Clock.now()``), as container finish times are.
"""

from __future__ import annotations

from dataclasses import dataclass

from pykubelet.core.clock import Clock

__all__ = ["Backoff"]


@dataclass(slots=True)
class _Entry:
    delay_s: float
    last_update: float


class Backoff:
    def __init__(self, clock: Clock, *, initial_s: float = 10.0, max_s: float = 300.0) -> None:
        self._clock = clock
        self.initial_s = initial_s
        self.max_s = max_s
        self._entries: dict[str, _Entry] = {}

    def _expired(self, event_time: float, entry: _Entry) -> bool:
        return event_time - entry.last_update > 2 * self.max_s

    def get(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay_s if entry else 0.0

    def next(self, key: str, event_time: float) -> None:
        entry = self._entries.get(key)
        if entry is None or self._expired(event_time, entry):
            entry = _Entry(delay_s=self.initial_s, last_update=0.0)
            self._entries[key] = entry
        else:
            entry.delay_s = min(entry.delay_s * 2, self.max_s)
        entry.last_update = self._clock.now()

    def in_backoff_since(self, key: str, event_time: float) -> bool:
        entry = self._entries.get(key)
        if entry is None or self._expired(event_time, entry):
            return False
        return self._clock.now() - event_time < entry.delay_s

    def remaining_s(self, key: str, event_time: float) -> float:
        """Seconds until ``in_backoff_since`` turns false (0 when not backing off)."""
        if not self.in_backoff_since(key, event_time):
            return 0.0
        return self._entries[key].delay_s - (self._clock.now() - event_time)

    def forget(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]

    def in_backoff_since_update(self, key: str) -> bool:
        """True while less than the current delay has passed since the last ``next``."""
        entry = self._entries.get(key)
        return entry is not None and self._clock.now() - entry.last_update < entry.delay_s

    def remaining_since_update_s(self, key: str) -> float:
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.delay_s - (self._clock.now() - entry.last_update))

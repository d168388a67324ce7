"""The single writer of pod status: workers set, everyone else reads immutable snapshots.

It keeps what the kubelet keeps stable across updates: a condition's ``lastTransitionTime``
changes only when its status changes, and ``startTime`` is set once.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from pykubelet.api import PodStatus
from pykubelet.core.clock import Clock

__all__ = ["StatusManager"]


class StatusManager:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._statuses: dict[str, PodStatus] = {}
        self.version = 0  # bumped on every change, for pushers (node mode)
        self.changed = asyncio.Event()
        self._subscribers: list[asyncio.Queue[str]] = []

    def subscribe(self) -> asyncio.Queue[str]:
        """A queue of the UIDs whose status changed or was removed from now on (the node
        mode's status writer); a UID may repeat, readers coalesce."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def _notify(self, uid: str) -> None:
        self.version += 1
        self.changed.set()
        for queue in self._subscribers:
            queue.put_nowait(uid)

    def get_pod_status(self, uid: str) -> PodStatus | None:
        return self._statuses.get(uid)

    def set_pod_status(self, uid: str, status: PodStatus) -> None:
        old = self._statuses.get(uid)
        now = self._clock.now()
        previous = {c.type: c for c in old.conditions} if old else {}
        conditions = []
        for c in status.conditions:
            before = previous.get(c.type)
            if before is not None and before.status == c.status and before.last_transition_time:
                c = replace(c, last_transition_time=before.last_transition_time)
            elif not c.last_transition_time:
                c = replace(c, last_transition_time=now)
            conditions.append(c)
        start = (old.start_time if old and old.start_time else 0.0) or status.start_time
        new = replace(status, conditions=tuple(conditions), start_time=start)
        if new != old:
            self._statuses[uid] = new
            self._notify(uid)

    def remove(self, uid: str) -> None:
        if self._statuses.pop(uid, None) is not None:
            self._notify(uid)

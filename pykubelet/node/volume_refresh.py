"""Keeps the ConfigMap, Secret and token volumes of running API pods current: every
``syncFrequency`` (1 min by default, upstream's resync) each pod's referenced objects are read
again and its volumes rewritten atomically, so updates reach running containers and tokens are
renewed before they expire (the pod-spec layer decides what is due). ``kick`` rewrites some
pods' volumes at once: a watched ConfigMap or Secret they reference changed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from pykubelet.api import Pod
from pykubelet.core.clock import Clock
from pykubelet.core.errors import PykubeletError
from pykubelet.node.client import ApiError

__all__ = ["VolumeRefresher"]

log = logging.getLogger(__name__)

REFRESH_S = 60.0


class VolumeRefresher:
    def __init__(
        self,
        pods: Callable[[], Iterable[Pod]],
        refresh: Callable[[Pod], Awaitable[bool]],
        clock: Clock,
        *,
        period_s: float = REFRESH_S,
    ) -> None:
        self._pods = pods
        self._refresh = refresh
        self._clock = clock
        self._period_s = period_s
        self._kicked: set[str] = set()  # pod uids to refresh now
        self._wake = asyncio.Event()
        self.refreshed = 0

    def kick(self, uids: Iterable[str]) -> None:
        self._kicked.update(uids)
        self._wake.set()

    async def run(self) -> None:
        due = self._clock.monotonic() + self._period_s
        while True:
            await self._wait(due - self._clock.monotonic())
            self._wake.clear()
            wanted: set[str] | None
            wanted, self._kicked = self._kicked, set()
            if self._clock.monotonic() >= due:
                due = self._clock.monotonic() + self._period_s
                wanted = None  # all of them
            for pod in list(self._pods()):
                if wanted is not None and pod.uid not in wanted:
                    continue
                try:
                    if await self._refresh(pod):
                        self.refreshed += 1
                except (ApiError, PykubeletError, OSError) as e:
                    log.warning("pod %s: volumes not refreshed: %s", pod.full_name, e)

    async def _wait(self, seconds: float) -> None:
        """Until ``seconds`` passed or a kick, whichever comes first."""
        if self._wake.is_set():
            return
        sleep = asyncio.ensure_future(self._clock.sleep(max(0.0, seconds)))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleep, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleep, woken):
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t

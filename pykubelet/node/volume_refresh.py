"""Keeps the ConfigMap, Secret and token volumes of running API pods current: every
``syncFrequency`` (1 min by default, upstream's resync) each pod's referenced objects are read
again and its volumes rewritten atomically, so updates reach running containers and tokens are
renewed before they expire (the pod-spec layer decides what is due)."""

from __future__ import annotations

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
        self.refreshed = 0

    async def run(self) -> None:
        while True:
            await self._clock.sleep(self._period_s)
            for pod in list(self._pods()):
                try:
                    if await self._refresh(pod):
                        self.refreshed += 1
                except (ApiError, PykubeletError, OSError) as e:
                    log.warning("pod %s: volumes not refreshed: %s", pod.full_name, e)

"""The agent's half of log rotation on the process runtime: gzip what the shim rotated.

The shim owns the log's fd, so it rotates by renaming the moment a record would pass
``containerLogMaxSize`` (``<log>.<stamp>``) and deletes the oldest rotations beyond
``containerLogMaxFiles``. Compressing is too slow for a writer that must never hold up its
container, so a periodic pass here does the rest with the CRI runtime's code
(``runtime/logrotate.py``): leftovers removed, the count enforced, all but the newest rotation
gzipped. Exited containers' logs are tidied too (the last rotations may come just before exit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from pykubelet.core.clock import Clock
from pykubelet.runtime.logrotate import tidy_rotations
from pykubelet.runtime.process.pools import run_io

__all__ = ["RotatedLogs"]

log = logging.getLogger(__name__)


class RotatedLogs:
    """``tidy()`` is one pass over the logs ``paths()`` names; ``run()`` repeats it."""

    def __init__(
        self,
        paths: Callable[[], Iterable[str]],
        *,
        max_files: int,
        clock: Clock,
        interval_s: float,
    ) -> None:
        self._paths = paths
        self._max_files = max_files
        self._clock = clock
        self._interval_s = interval_s
        self._lock = asyncio.Lock()  # one pass at a time: a second would see the first's .tmp

    async def tidy(self) -> int:
        """Returns how many rotated files were gzipped. A log that cannot be tidied is
        logged and skipped (the next pass tries again), as upstream does."""
        done = 0
        async with self._lock:
            for path in self._paths():
                try:
                    done += await run_io(tidy_rotations, path, self._max_files - 1, 1)
                except OSError as e:
                    log.warning("container log %s: rotation: %s", path, e)
        return done

    async def run(self) -> None:
        while True:
            await self._clock.sleep(self._interval_s)
            await self.tidy()

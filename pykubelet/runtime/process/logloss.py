"""Container output the shim could not write to its log file (disk full, I/O error).

The container is never held up for it: the shim drops the record (a record cut short is
truncated away, so the file stays line-aligned), counts it and keeps writing as soon as the
file system takes data again. Its count is one fixed-width line in ``shim/logloss``, rewritten
in place (a full disk cannot refuse it): lost records, lost bytes of output, the last errno.
``LogLossWatch`` turns growth of those counters into what an operator sees: the
``pykubelet_container_log_{records,bytes}_lost_total`` counters, a warning in the agent's log and a
callback (the agent makes it a Warning event on the pod).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pykubelet.runtime.log_metrics import CONTAINER_LOG_BYTES_LOST, CONTAINER_LOG_RECORDS_LOST
from pykubelet.runtime.types import ContainerStatus

__all__ = [
    "LogLoss",
    "LogLossWatch",
    "read_log_loss",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogLoss:
    records: int
    bytes: int
    errno: int

    @property
    def reason(self) -> str:
        return os.strerror(self.errno) if self.errno else "unknown error"


def read_log_loss(path: Path) -> LogLoss | None:
    """The shim's counters, or None (no file: a shim from before the counters, or none yet)."""
    try:
        fields = path.read_text().split()
        return LogLoss(int(fields[0]), int(fields[1]), int(fields[2]))
    except (OSError, ValueError, IndexError):
        return None


OnLoss = Callable[[ContainerStatus, LogLoss, LogLoss], None]
"""Called with the container, what was lost since the last poll, and the totals."""


class LogLossWatch:
    """Remembers each container's last counters; ``poll`` reports what grew since."""

    def __init__(self, on_loss: OnLoss | None = None) -> None:
        self._seen: dict[str, LogLoss] = {}
        self._on_loss = on_loss

    def poll(self, containers: Iterable[tuple[ContainerStatus, Path]]) -> list[LogLoss]:
        """``containers``: each container's status and its ``logloss`` file."""
        grown: list[LogLoss] = []
        alive: set[str] = set()
        for status, path in containers:
            alive.add(status.id)
            now = read_log_loss(path)
            if now is None:
                continue
            before = self._seen.get(status.id, LogLoss(0, 0, 0))
            self._seen[status.id] = now
            if now.records <= before.records:
                continue
            delta = LogLoss(now.records - before.records, now.bytes - before.bytes, now.errno)
            grown.append(delta)
            CONTAINER_LOG_RECORDS_LOST.inc(delta.records)
            CONTAINER_LOG_BYTES_LOST.inc(delta.bytes)
            log.warning(
                "container %s (%s): %d log records (%d bytes) not written to %s: %s "
                "(%d records lost in all); the container keeps running",
                status.name,
                status.id[:12],
                delta.records,
                delta.bytes,
                status.log_path,
                delta.reason,
                now.records,
            )
            if self._on_loss is not None:
                self._on_loss(status, delta, now)
        for gone in set(self._seen) - alive:
            del self._seen[gone]
        return grown

    async def run(
        self,
        containers: Callable[[], Iterable[tuple[ContainerStatus, Path]]],
        interval_s: float = 10.0,
    ) -> None:
        """Poll until cancelled (the agent's ``container-log-loss`` service)."""
        while True:
            try:
                self.poll(containers())
            except Exception:  # a failed poll must not stop the agent; the next one retries
                log.exception("checking the containers' log losses failed")
            await asyncio.sleep(interval_s)

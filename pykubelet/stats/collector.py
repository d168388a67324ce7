"""The housekeeping loop: samples every pod, container and the node, keeps the latest snapshot.

Listing the runtime happens on the event loop (it is async); every kernel read happens in one
worker thread per pass, so endpoints never wait on files. A container that vanishes between the
listing and the read is simply left without figures; it is not an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from pykubelet.core.clock import Clock, SystemClock
from pykubelet.pods.protocol import PodLister
from pykubelet.runtime.types import ContainerState, ContainerStatus, SandboxState, SandboxStatus
from pykubelet.stats.cgroups import CgroupReader
from pykubelet.stats.node_sampling import ProcReader
from pykubelet.stats.sampler import Listing, Sampler
from pykubelet.stats.source import StatsConfig, StatsSource
from pykubelet.stats.types import Snapshot

__all__ = ["StatsCollector"]

log = logging.getLogger(__name__)

_FIRST_INTERVAL_S = 1.0  # a quick second pass so rates exist soon after start-up


class StatsCollector:
    """Owns the latest ``Snapshot``. ``run()`` loops; ``collect_once()`` does one pass."""

    def __init__(
        self,
        config: StatsConfig,
        source: StatsSource,
        pods: PodLister | None = None,
        *,
        clock: Clock | None = None,
        cgroups: CgroupReader | None = None,
        proc: ProcReader | None = None,
    ) -> None:
        self.config = config
        self._source = source
        self._pods = pods
        self._clock = clock or SystemClock()
        self._sampler = Sampler(config, self._clock, cgroups=cgroups, proc=proc)
        self._latest: Snapshot | None = None
        self._lock = asyncio.Lock()
        self.ready = asyncio.Event()
        self.passes = 0
        self.running_pods = 0
        self.containers_by_state: dict[str, int] = {}
        self._listeners: list[Callable[[Snapshot], None]] = []

    def on_snapshot(self, listener: Callable[[Snapshot], None]) -> None:
        """Call ``listener(snapshot)`` in the worker thread after each successful pass, before the
        snapshot is published (renderers use it to have bodies ready when scrapes come)."""
        self._listeners.append(listener)

    def _sample_and_notify(self, listing: Listing) -> Snapshot:
        snap = self._sampler.sample(listing)
        for listener in self._listeners:
            try:
                listener(snap)
            except Exception:  # supervision point: a listener must not lose the pass
                log.exception("stats snapshot listener failed")
        return snap

    def latest(self) -> Snapshot | None:
        """The last pass's snapshot (with ``error`` set if a later pass failed), or None."""
        return self._latest

    @property
    def sampling_cpu_s(self) -> float:
        """CPU seconds the sampling thread has spent (for the benchmark)."""
        return self._sampler.cpu_s

    async def run(self) -> None:
        first = True
        while True:
            try:
                await self.collect_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # supervision point: a bad pass must not end housekeeping
                log.exception("stats housekeeping pass failed")
            self.ready.set()
            interval = self.config.housekeeping_interval_s
            await self._clock.sleep(min(_FIRST_INTERVAL_S, interval) if first else interval)
            first = False

    async def collect_once(self) -> Snapshot:
        async with self._lock:
            try:
                listing = await self._list()
                snap = await asyncio.to_thread(self._sample_and_notify, listing)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                prev = self._latest
                err = f"{type(e).__name__}: {e}"
                if prev is not None:
                    self._latest = Snapshot(
                        time=prev.time, node=prev.node, pods=prev.pods, error=err
                    )
                raise
            self._latest = snap
            self.passes += 1
            return snap

    async def _list(self) -> Listing:
        sandboxes = list(await self._source.list_pod_sandboxes())
        containers = await self._source.list_containers()
        # One sandbox per pod: the ready one, else the newest.
        by_uid: dict[str, SandboxStatus] = {}
        for sb in sorted(sandboxes, key=lambda s: (s.state == SandboxState.READY, s.created_at)):
            by_uid[sb.uid] = sb
        chosen = {sb.id for sb in by_uid.values()}
        running: dict[str, list[ContainerStatus]] = {}
        for c in sorted(containers, key=lambda c: (c.name, c.attempt)):
            if c.state == ContainerState.RUNNING and c.sandbox_id in chosen:
                running.setdefault(c.sandbox_id, []).append(c)
        pods = {p.meta.uid: p for p in self._pods.list_pods()} if self._pods else {}
        self.running_pods = sum(1 for sb in by_uid.values() if sb.state == SandboxState.READY)
        states: dict[str, int] = {}
        for c in containers:
            state = c.state.value.removeprefix("CONTAINER_").lower()
            states[state] = states.get(state, 0) + 1
        self.containers_by_state = states
        return Listing(
            sandboxes=tuple(sorted(by_uid.values(), key=lambda s: (s.namespace, s.name))),
            containers={k: _latest_per_name(v) for k, v in running.items()},
            pods=pods,
        )


def _latest_per_name(cs: Sequence[ContainerStatus]) -> tuple[ContainerStatus, ...]:
    by_name: dict[str, ContainerStatus] = {}
    for c in cs:
        by_name[c.name] = c  # sorted by attempt: the last one wins
    return tuple(by_name.values())

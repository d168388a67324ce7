"""The stats backend the HTTP layer calls: every endpoint body, from the latest snapshot."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from pykubelet.core.errors import Unavailable
from pykubelet.stats.agent_metrics import AgentMetrics
from pykubelet.stats.cadvisor_metrics import cadvisor_families
from pykubelet.stats.collector import StatsCollector
from pykubelet.stats.exposition import FunctionCollector, private_registry, render
from pykubelet.stats.families import render_text
from pykubelet.stats.resource_metrics import resource_metric_families
from pykubelet.stats.summary import encode_summary
from pykubelet.stats.types import Snapshot

__all__ = ["PodLayerCounters", "StatsService"]

# An endpoint scraped within this long is rendered ahead, right after each housekeeping pass.
WANTED_FOR_S = 300.0


class PodLayerCounters(Protocol):
    """What the pod layer counts for ``/metrics`` (``PodManager.stats()`` returns one)."""

    @property
    def pod_start_durations_s(self) -> Sequence[float]: ...


def _resource(snap: Snapshot | None) -> bytes:
    return render(private_registry(FunctionCollector(resource_metric_families(lambda: snap))))


def _cadvisor(snap: Snapshot | None) -> bytes:
    return b"" if snap is None else render_text(cadvisor_families(snap))


def _summary(full: bool) -> Callable[[Snapshot | None], bytes]:
    def render_summary(snap: Snapshot | None) -> bytes:
        assert snap is not None
        return encode_summary(snap, only_cpu_and_memory=not full)

    return render_summary


_RENDERERS: dict[str, Callable[[Snapshot | None], bytes]] = {
    "summary": _summary(True),
    "summary-cpu-memory": _summary(False),
    "resource": _resource,
    "cadvisor": _cadvisor,
}


class StatsService:
    """Renders cached figures; never reads a kernel file itself. Non-blocking (CPU only).

    Bodies that depend only on the snapshot are rendered once per snapshot. Those scraped in the
    last ``WANTED_FOR_S`` are rendered in the housekeeping thread right after each pass, so a
    scrape costs a dictionary lookup; the others render on first request.
    """

    def __init__(
        self,
        collector: StatsCollector,
        metrics: AgentMetrics,
        pod_counters: Callable[[], PodLayerCounters] | None = None,
    ) -> None:
        self.collector = collector
        self.metrics = metrics
        self._pod_counters = pod_counters
        self._cache: dict[str, tuple[Snapshot | None, bytes]] = {}
        self._wanted: dict[str, float] = {}
        self._lock = threading.Lock()
        self.prerender_cpu_s = 0.0  # for the benchmark
        collector.on_snapshot(self._prerender)

    def _prerender(self, snap: Snapshot) -> None:
        now = time.monotonic()
        with self._lock:
            keys = [k for k, t in self._wanted.items() if now - t < WANTED_FOR_S]
        if not keys:
            return
        t0 = time.thread_time()
        for key in keys:
            body = _RENDERERS[key](snap)
            with self._lock:
                self._cache[key] = (snap, body)
        self.prerender_cpu_s += time.thread_time() - t0

    def _cached(self, key: str) -> bytes:
        snap = self.collector.latest()
        with self._lock:
            self._wanted[key] = time.monotonic()
            hit = self._cache.get(key)
        if hit is not None and hit[0] is snap and snap is not None:
            return hit[1]
        body = _RENDERERS[key](snap)
        with self._lock:
            self._cache[key] = (snap, body)
        return body

    def summary(self, *, only_cpu_and_memory: bool = False) -> bytes:
        if self.collector.latest() is None:
            raise Unavailable("stats are not collected yet")
        return self._cached("summary-cpu-memory" if only_cpu_and_memory else "summary")

    def resource_metrics(self) -> bytes:
        return self._cached("resource")

    def cadvisor_metrics(self) -> bytes:
        return self._cached("cadvisor")

    def probe_metrics(self) -> bytes:
        return render(self.metrics.probe_registry)

    def agent_metrics(self) -> bytes:
        c = self.collector
        if c.passes:
            self.metrics.set_running(c.running_pods, c.containers_by_state)
        if self._pod_counters is not None:
            self.metrics.set_pod_start_durations(self._pod_counters().pod_start_durations_s)
        return render(self.metrics.registry)

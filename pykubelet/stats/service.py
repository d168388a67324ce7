"""The stats backend the HTTP layer calls: every endpoint body, from the latest snapshot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from prometheus_client.registry import CollectorRegistry

from pykubelet.errors import Unavailable
from pykubelet.stats.agent_metrics import AgentMetrics
from pykubelet.stats.cadvisor_metrics import cadvisor_families
from pykubelet.stats.collector import StatsCollector
from pykubelet.stats.exposition import FunctionCollector, private_registry, render
from pykubelet.stats.families import render_text
from pykubelet.stats.resource_metrics import resource_metric_families
from pykubelet.stats.summary import encode_summary
from pykubelet.stats.types import Snapshot

__all__ = ["PodLayerCounters", "StatsService"]


class PodLayerCounters(Protocol):
    """What the pod layer counts for ``/metrics`` (``PodManager.stats()`` returns one)."""

    @property
    def pod_start_durations_s(self) -> Sequence[float]: ...


class StatsService:
    """Renders cached figures; never reads a kernel file itself. Non-blocking (CPU only).

    Bodies derived only from the snapshot are rendered once per snapshot and reused until the
    next housekeeping pass replaces it, so scrapes between passes cost a dictionary lookup.
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
        self._resource: CollectorRegistry = private_registry(
            FunctionCollector(resource_metric_families(collector.latest))
        )
        self._cache: dict[str, tuple[Snapshot | None, bytes]] = {}

    def _cached(self, key: str, render_body: Callable[[Snapshot | None], bytes]) -> bytes:
        snap = self.collector.latest()
        hit = self._cache.get(key)
        if hit is not None and hit[0] is snap and snap is not None:
            return hit[1]
        body = render_body(snap)
        self._cache[key] = (snap, body)
        return body

    def _snapshot(self) -> Snapshot:
        snap = self.collector.latest()
        if snap is None:
            raise Unavailable("stats are not collected yet")
        return snap

    def summary(self, *, only_cpu_and_memory: bool = False) -> bytes:
        snap = self._snapshot()
        return self._cached(
            f"summary/{only_cpu_and_memory}",
            lambda _: encode_summary(snap, only_cpu_and_memory=only_cpu_and_memory),
        )

    def resource_metrics(self) -> bytes:
        return self._cached("resource", lambda _: render(self._resource))

    def cadvisor_metrics(self) -> bytes:
        return self._cached(
            "cadvisor", lambda snap: b"" if snap is None else render_text(cadvisor_families(snap))
        )

    def probe_metrics(self) -> bytes:
        return render(self.metrics.probe_registry)

    def agent_metrics(self) -> bytes:
        c = self.collector
        if c.passes:
            self.metrics.set_running(c.running_pods, c.containers_by_state)
        if self._pod_counters is not None:
            self.metrics.set_pod_start_durations(self._pod_counters().pod_start_durations_s)
        return render(self.metrics.registry)

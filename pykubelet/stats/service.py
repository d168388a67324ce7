"""The stats backend the HTTP layer calls: every endpoint body, from the latest snapshot."""

from __future__ import annotations

from prometheus_client.registry import CollectorRegistry

from pykubelet.errors import Unavailable
from pykubelet.stats.agent_metrics import AgentMetrics
from pykubelet.stats.cadvisor_metrics import cadvisor_metric_families
from pykubelet.stats.collector import StatsCollector
from pykubelet.stats.exposition import FunctionCollector, private_registry, render
from pykubelet.stats.resource_metrics import resource_metric_families
from pykubelet.stats.summary import encode_summary
from pykubelet.stats.types import Snapshot

__all__ = ["StatsService"]


class StatsService:
    """Renders cached figures; never reads a kernel file itself. Non-blocking (CPU only)."""

    def __init__(self, collector: StatsCollector, metrics: AgentMetrics) -> None:
        self.collector = collector
        self.metrics = metrics
        self._resource: CollectorRegistry = private_registry(
            FunctionCollector(resource_metric_families(collector.latest))
        )
        self._cadvisor: CollectorRegistry = private_registry(
            FunctionCollector(cadvisor_metric_families(collector.latest))
        )

    def _snapshot(self) -> Snapshot:
        snap = self.collector.latest()
        if snap is None:
            raise Unavailable("stats are not collected yet")
        return snap

    def summary(self, *, only_cpu_and_memory: bool = False) -> bytes:
        return encode_summary(self._snapshot(), only_cpu_and_memory=only_cpu_and_memory)

    def resource_metrics(self) -> bytes:
        return render(self._resource)

    def cadvisor_metrics(self) -> bytes:
        return render(self._cadvisor)

    def probe_metrics(self) -> bytes:
        return render(self.metrics.probe_registry)

    def agent_metrics(self) -> bytes:
        c = self.collector
        if c.passes:
            self.metrics.set_running(c.running_pods, c.containers_by_state)
        return render(self.metrics.registry)

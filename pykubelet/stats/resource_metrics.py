"""``/metrics/resource``: the series metrics-server reads, from the cpu-and-memory view.

Every usage sample carries an explicit timestamp (the stat's time); start times and the scrape
error gauges carry none. Families come in name order and series in label order, as the Go
registry sorts them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from pykubelet.stats.types import ContainerSample, Snapshot

__all__ = ["resource_metric_families"]

_SCRAPE_HELP = "1 if there was an error while getting container metrics, 0 otherwise"


def resource_metric_families(
    latest: Callable[[], Snapshot | None],
) -> Callable[[], Iterator[Metric]]:
    """A producer for ``FunctionCollector``: reads the latest snapshot at each scrape."""

    def produce() -> Iterator[Metric]:
        snap = latest()
        labels = ["container", "namespace", "pod"]
        c_cpu = CounterMetricFamily(
            "container_cpu_usage_seconds",
            "[ALPHA] Cumulative cpu time consumed by the container in core-seconds",
            labels=labels,
        )
        c_mem = GaugeMetricFamily(
            "container_memory_working_set_bytes",
            "[ALPHA] Current working set of the container in bytes",
            labels=labels,
        )
        c_start = GaugeMetricFamily(
            "container_start_time_seconds",
            "[ALPHA] Start time of the container since unix epoch in seconds",
            labels=labels,
        )
        n_cpu = CounterMetricFamily(
            "node_cpu_usage_seconds",
            "[ALPHA] Cumulative cpu time consumed by the node in core-seconds",
        )
        n_mem = GaugeMetricFamily(
            "node_memory_working_set_bytes", "[ALPHA] Current working set of the node in bytes"
        )
        p_cpu = CounterMetricFamily(
            "pod_cpu_usage_seconds",
            "[ALPHA] Cumulative cpu time consumed by the pod in core-seconds",
            labels=["namespace", "pod"],
        )
        p_mem = GaugeMetricFamily(
            "pod_memory_working_set_bytes",
            "[ALPHA] Current working set of the pod in bytes",
            labels=["namespace", "pod"],
        )
        failed = snap is None or bool(snap.error)
        if snap is not None:
            if snap.node.cpu is not None:
                n_cpu.add_metric(
                    [], snap.node.cpu.usage_core_ns / 1e9, timestamp=snap.node.cpu.time
                )
            if snap.node.memory is not None:
                m = snap.node.memory
                n_mem.add_metric([], m.working_set_bytes, timestamp=m.time)
            rows: list[tuple[str, str, str, ContainerSample]] = []
            for pod in snap.pods:
                if pod.cpu is not None:
                    p_cpu.add_metric(
                        [pod.namespace, pod.name],
                        pod.cpu.usage_core_ns / 1e9,
                        timestamp=pod.cpu.time,
                    )
                if pod.memory is not None:
                    p_mem.add_metric(
                        [pod.namespace, pod.name],
                        pod.memory.working_set_bytes,
                        timestamp=pod.memory.time,
                    )
                rows.extend((c.name, pod.namespace, pod.name, c) for c in pod.containers)
            for name, ns, pod_name, c in sorted(rows, key=lambda r: r[:3]):
                key = [name, ns, pod_name]
                if c.cpu is not None:
                    c_cpu.add_metric(key, c.cpu.usage_core_ns / 1e9, timestamp=c.cpu.time)
                if c.memory is not None:
                    c_mem.add_metric(key, c.memory.working_set_bytes, timestamp=c.memory.time)
                if c.start_time:
                    c_start.add_metric(key, c.start_time)
        scrape = GaugeMetricFamily("scrape_error", f"[ALPHA] {_SCRAPE_HELP}")
        scrape.add_metric([], 1 if failed else 0)
        resource_scrape = GaugeMetricFamily("resource_scrape_error", f"[STABLE] {_SCRAPE_HELP}")
        resource_scrape.add_metric([], 1 if failed else 0)
        yield from (c_cpu, c_mem, c_start, n_cpu, n_mem, p_cpu, p_mem, resource_scrape, scrape)

    return produce

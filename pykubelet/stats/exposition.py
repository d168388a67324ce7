"""Rendering custom collectors to the Prometheus text format, one private registry each."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "FunctionCollector", "private_registry", "render"]

# What the kubelet (client_golang's text format 0.0.4) answers with.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class FunctionCollector(Collector):
    """A collector whose samples come from a function called at scrape time."""

    def __init__(self, produce: Callable[[], Iterable[Metric]]) -> None:
        self._produce = produce

    def collect(self) -> Iterable[Metric]:
        return self._produce()


def private_registry(*collectors: Collector) -> CollectorRegistry:
    """A registry of its own (never the global default), not calling collect() to describe."""
    registry = CollectorRegistry(auto_describe=False)
    for c in collectors:
        registry.register(c)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)

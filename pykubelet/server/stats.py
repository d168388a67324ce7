"""aiohttp glue for ``/stats/summary`` (GET and POST), plus the metrics routes, for both the
full (10250) and read-only (10255) ports."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from pykubelet.core.clock import Clock
from pykubelet.core.errors import Unavailable
from pykubelet.pods.protocol import PodLister
from pykubelet.server.metrics import HttpMetricsObserver, MetricsBackend, metrics_routes
from pykubelet.server.pods import not_acceptable
from pykubelet.server.settings import RequestObserver
from pykubelet.stats import (
    AgentMetrics,
    PodLayerCounters,
    StatsCollector,
    StatsConfig,
    StatsService,
    StatsSource,
    default_metrics,
    upper_dirs_under,
)

__all__ = [
    "StatsBackend",
    "StatsParts",
    "build_stats",
    "only_cpu_and_memory",
    "stats_routes",
]


class StatsBackend(MetricsBackend, Protocol):
    """What the stats routes call; ``pykubelet.stats.StatsService`` implements it."""

    def summary(self, *, only_cpu_and_memory: bool = False) -> bytes: ...


def only_cpu_and_memory(values: list[str]) -> bool:
    """Upstream's rule: exactly one ``only_cpu_and_memory`` value, and it is ``true``."""
    return values == ["true"]


def stats_routes(backend: StatsBackend) -> list[web.RouteDef]:
    """``/stats/summary`` and the four ``/metrics*`` routes."""

    async def summary(request: web.Request) -> web.StreamResponse:
        if not_acceptable(request, "application/json"):
            raise web.HTTPNotAcceptable()  # go-restful's 406, as on /pods
        values = list(request.query.getall("only_cpu_and_memory", []))
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            # Go's ParseForm merges a form body into the query values.
            form = await request.post()
            values += [str(v) for v in form.getall("only_cpu_and_memory", [])]
        try:
            body = backend.summary(only_cpu_and_memory=only_cpu_and_memory(values))
        except Unavailable as e:
            # The kubelet answers a failed summary with 500 and this exact text.
            return web.Response(status=500, text=f"Internal Error: {e}")
        return web.Response(body=body, content_type="application/json")

    return [
        # go-restful matches a route with or without the trailing slash
        web.get("/stats/summary", summary, allow_head=False),
        web.get("/stats/summary/", summary, allow_head=False),
        web.post("/stats/summary", summary),
        web.post("/stats/summary/", summary),
        *metrics_routes(backend),
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsParts:
    """Everything the composition root needs from stats, built by ``build_stats``.

    Run ``collector.run()`` as a service; mount ``routes`` as both ``extra_routes`` and
    ``extra_read_only_routes``; pass ``observer`` as ``ServerBackends.observer`` (it chains to
    the next observer given); hand ``metrics`` to the prober (it is a ``ProbeRecorder``).
    """

    collector: StatsCollector
    service: StatsService
    metrics: AgentMetrics
    routes: list[web.RouteDef]
    observer: HttpMetricsObserver


def build_stats(
    *,
    node_name: str,
    root_dir: str,
    runtime: StatsSource,
    pods: PodLister | None = None,
    cgroup_root: str = "pykubelet",
    clock: Clock | None = None,
    housekeeping_interval_s: float = 10.0,
    pod_counters: Callable[[], PodLayerCounters] | None = None,
    next_observer: RequestObserver | None = None,
    metrics: AgentMetrics | None = None,
) -> StatsParts:
    """Stats for the process runtime's layout under ``root_dir`` (``images/``,
    ``runtime/containers/<id>/upper``, ``pods/<uid>/volumes``). Construction does no I/O."""
    config = StatsConfig(
        node_name=node_name,
        root_dir=root_dir,
        pods_cgroup=cgroup_root,
        image_fs_dir=os.path.join(root_dir, "images"),
        pod_volumes_dir=os.path.join(root_dir, "pods"),
        housekeeping_interval_s=housekeeping_interval_s,
        rootfs_dir=upper_dirs_under(os.path.join(root_dir, "runtime", "containers")),
    )
    agent = metrics or default_metrics()
    agent.node_name = node_name
    collector = StatsCollector(config, runtime, pods, clock=clock)
    service = StatsService(collector, agent, pod_counters)
    return StatsParts(
        collector=collector,
        service=service,
        metrics=agent,
        routes=stats_routes(service),
        observer=HttpMetricsObserver(agent, next_observer),
    )

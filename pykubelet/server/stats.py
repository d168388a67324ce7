"""aiohttp glue for ``/stats/summary`` (GET and POST), plus the metrics routes, for both the
full (10250) and read-only (10255) ports."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from pykubelet.errors import Unavailable
from pykubelet.server.metrics import MetricsBackend, metrics_routes

__all__ = ["StatsBackend", "only_cpu_and_memory", "stats_routes"]


class StatsBackend(MetricsBackend, Protocol):
    """What the stats routes call; ``pykubelet.stats.StatsService`` implements it."""

    def summary(self, *, only_cpu_and_memory: bool = False) -> bytes: ...


def only_cpu_and_memory(values: list[str]) -> bool:
    """Upstream's rule: exactly one ``only_cpu_and_memory`` value, and it is ``true``."""
    return values == ["true"]


def stats_routes(backend: StatsBackend) -> list[web.RouteDef]:
    """``/stats/summary`` and the four ``/metrics*`` routes."""

    async def summary(request: web.Request) -> web.StreamResponse:
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
        web.get("/stats/summary", summary, allow_head=False),
        web.post("/stats/summary", summary),
        *metrics_routes(backend),
    ]

"""aiohttp glue for ``/metrics``, ``/metrics/resource``, ``/metrics/cadvisor``, ``/metrics/probes``
and the request-counting middleware feeding ``kubelet_http_*``.

Upstream mounts these as plain mux handlers, so every method gets the exposition (§8.7).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from pykubelet.server.settings import RequestObserver, RequestRecord
from pykubelet.stats import CONTENT_TYPE, AgentMetrics

__all__ = [
    "HttpMetricsObserver",
    "MetricsBackend",
    "http_metrics_middleware",
    "metrics_routes",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


class MetricsBackend(Protocol):
    """Bodies of the four exposition endpoints; CPU only, never blocks on I/O."""

    def agent_metrics(self) -> bytes: ...

    def resource_metrics(self) -> bytes: ...

    def cadvisor_metrics(self) -> bytes: ...

    def probe_metrics(self) -> bytes: ...


def _exposition(produce: Callable[[], bytes]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=produce(), headers={"Content-Type": CONTENT_TYPE})

    return handler


def metrics_routes(backend: MetricsBackend) -> list[web.RouteDef]:
    return [
        web.route("*", "/metrics", _exposition(backend.agent_metrics)),
        web.route("*", "/metrics/resource", _exposition(backend.resource_metrics)),
        web.route("*", "/metrics/cadvisor", _exposition(backend.cadvisor_metrics)),
        web.route("*", "/metrics/probes", _exposition(backend.probe_metrics)),
    ]


_LONG_RUNNING = frozenset({"exec", "attach", "portForward", "run"})


def _long_running(request: web.Request) -> bool:
    first = request.path.strip("/").split("/", 1)[0]
    if first in _LONG_RUNNING:
        return True
    return first == "containerLogs" and request.query.get("follow", "false") != "false"


def http_metrics_middleware(metrics: AgentMetrics, server_type: str) -> Middleware:
    """Counts each request into ``kubelet_http_requests_total`` / ``_duration_seconds`` and
    keeps ``kubelet_http_inflight_requests``. ``server_type`` is ``readwrite`` (10250) or
    ``readonly`` (10255), upstream's label values."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        long_running = _long_running(request)
        metrics.request_started(request.method, request.path, server_type, long_running)
        t0 = time.monotonic()
        try:
            return await handler(request)
        finally:
            metrics.request_finished(
                request.method, request.path, server_type, long_running, time.monotonic() - t0
            )

    return middleware


_SERVER_TYPES = {"full": "readwrite", "read-only": "readonly"}


class HttpMetricsObserver:
    """A request observer for ``KubeletServers`` that counts finished requests into
    ``kubelet_http_requests_total`` / ``_duration_seconds`` and then calls ``next`` (the audit
    or request log), so the two chain. In-flight counts need the middleware above instead."""

    def __init__(self, metrics: AgentMetrics, next_observer: RequestObserver | None = None) -> None:
        self._metrics = metrics
        self._next = next_observer

    def observe(self, record: RequestRecord) -> None:
        server_type = _SERVER_TYPES.get(record.port_kind)
        if server_type is not None:
            first = record.path.strip("/").split("/", 1)[0]
            long_running = first in _LONG_RUNNING or (
                first == "containerLogs" and "follow=true" in record.query
            )
            self._metrics.request_finished(
                record.method, record.path, server_type, long_running, record.duration_s
            )
        if self._next is not None:
            self._next.observe(record)

"""aiohttp glue for ``/metrics``, ``/metrics/resource``, ``/metrics/cadvisor``, ``/metrics/probes``
and the request-counting middleware feeding ``kubelet_http_*``.

Upstream mounts these as plain mux handlers, so every method gets the exposition (§8.7).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from pykubelet.server.settings import RequestObserver, RequestRecord
from pykubelet.stats import CONTENT_TYPE, AgentMetrics

__all__ = [
    "HttpMetricsObserver",
    "MetricsBackend",
    "http_metrics_middleware",
    "metrics_routes",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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

# The path roots the kubelet serves; any other first segment is counted as ``other`` (as
# upstream's getURLRootPath does), so unauthenticated clients cannot mint label values.
KNOWN_ROOTS = frozenset(
    {
        "attach",
        "configz",
        "containerLogs",
        "cri",
        "debug",
        "exec",
        "healthz",
        "logs",
        "metrics",
        "pods",
        "portForward",
        "run",
        "runningpods",
        "spec",
        "stats",
    }
)
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)


@functools.lru_cache(maxsize=1024)  # a few paths serve nearly every request; bounded for the rest
def metric_path(path: str) -> str:
    """The path as a metric label sees it: its root if known, else ``/other``."""
    root = path.strip("/").split("/", 1)[0]
    return "/" + root if root in KNOWN_ROOTS else "/other"


def metric_method(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


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
        method, path = metric_method(request.method), metric_path(request.path)
        metrics.request_started(method, path, server_type, long_running)
        t0 = time.monotonic()
        try:
            return await handler(request)
        finally:
            metrics.request_finished(method, path, server_type, long_running, time.monotonic() - t0)

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
        if server_type is not None and record.stage == "ResponseComplete":
            first = record.path.strip("/").split("/", 1)[0]
            long_running = first in _LONG_RUNNING or (
                first == "containerLogs" and "follow=true" in record.query
            )
            self._metrics.request_finished(
                metric_method(record.method),
                metric_path(record.path),
                server_type,
                long_running,
                record.duration_s,
            )
        if self._next is not None:
            self._next.observe(record)

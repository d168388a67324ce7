"""The agent's own series (``/metrics``) and probe results (``/metrics/probes``).

Other parts of the agent record into an ``AgentMetrics``; the endpoints render it. Nothing here
touches prometheus_client's global default registry. Recording is cheap, thread-safe and never
raises for valid input; bad label values raise ``InvalidInput`` naming the parameter.

Who calls what:

* the prober (pods layer): ``record_probe(probe_type, result, pod, container)`` after every probe
  (``pod`` a ``Pod``, or its name with ``namespace=`` and ``pod_uid=``: an ``AgentMetrics`` is a
  ready ``ProbeRecorder`` for ``pykubelet.podspec.prober``);
  ``forget_pod(uid)`` when a pod's workers stop, so its series go away as upstream's do;
* the pod workers: ``observe_pod_start(duration_s)`` when a pod first reaches Running (or the
  stats service calls ``set_pod_start_durations`` from the pod layer's counters at each scrape);
* the HTTP server: ``request_started(...)`` / ``request_finished(...)`` around each request
  (``server/metrics.py`` has an aiohttp middleware doing exactly that);
* running pods / containers are counted by the stats collector from the runtime listing;
* anything else (the audit log's dropped-events counter, say) registers its own
  prometheus_client collector into ``AgentMetrics.registry`` with ``registry.register(...)``.

A module-level ``default_metrics()`` instance exists for callers that have no handle on the
composition root; tests build their own ``AgentMetrics``.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

from prometheus_client import Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from pykubelet.api import Pod
from pykubelet.core.errors import InvalidInput
from pykubelet.runtime.log_metrics import CONTAINER_LOG_BYTES_LOST, CONTAINER_LOG_RECORDS_LOST
from pykubelet.stats.exposition import FunctionCollector, private_registry

__all__ = [
    "PROBE_RESULTS",
    "PROBE_TYPES",
    "AUDIT_EVENTS_DROPPED",
    "AUDIT_EVENTS_SUPPRESSED",
    "AgentMetrics",
    "default_metrics",
    "record_probe",
]

PROBE_TYPES = ("Liveness", "Readiness", "Startup")
PROBE_RESULTS = ("successful", "failed", "unknown")
# client_golang's DefBuckets, which the 1.20 kubelet uses for these histograms.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTAINER_STATES = ("created", "running", "exited", "unknown")


class _Histogram:
    """Counts per bucket (one increment per observation), made cumulative when rendered."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self._hits = [0] * (len(self.buckets) + 1)  # the last: above every bound
        self.count = 0
        self.sum = 0.0

    def observe(self, v: float) -> None:
        self._hits[bisect.bisect_left(self.buckets, v)] += 1
        self.count += 1
        self.sum += v

    def rows(self) -> list[tuple[str, float]]:
        cumulative = itertools.accumulate(self._hits[:-1])
        rows = [(_le(le), float(n)) for le, n in zip(self.buckets, cumulative, strict=True)]
        return [*rows, ("+Inf", float(self.count))]


def _le(v: float) -> str:
    return str(int(v)) if v == int(v) and v >= 1 else repr(v)


class AgentMetrics:
    """Thread-safe store of the agent's counters, rendered by ``registry`` / ``probe_registry``."""

    def __init__(self, *, node_name: str = "", start_time: float | None = None) -> None:
        self._lock = threading.Lock()
        self.node_name = node_name
        self.start_time = time.time() if start_time is None else start_time
        self._probes: dict[tuple[str, str, str, str, str, str], int] = {}
        self._pod_start = _Histogram(DEFAULT_BUCKETS)
        self._http_total: dict[tuple[str, str, str, str], int] = {}
        self._http_inflight: dict[tuple[str, str, str, str], int] = {}
        self._http_duration: dict[tuple[str, str, str, str], _Histogram] = {}
        self._running_pods = 0
        self._running_containers: dict[str, int] = {}
        self.registry: CollectorRegistry = private_registry(
            FunctionCollector(self._agent_families),
            ProcessCollector(registry=None),
            AUDIT_EVENTS_DROPPED,
            AUDIT_EVENTS_SUPPRESSED,
            CONTAINER_LOG_RECORDS_LOST,
            CONTAINER_LOG_BYTES_LOST,
        )
        self.probe_registry: CollectorRegistry = private_registry(
            FunctionCollector(self._probe_families)
        )

    # ---- recording API ----

    def record_probe(
        self,
        probe_type: str,
        result: str,
        pod: Pod | str,
        container: str,
        *,
        namespace: str = "",
        pod_uid: str = "",
    ) -> None:
        """Count one probe outcome: ``probe_type`` ``Liveness``/``Readiness``/``Startup``,
        ``result`` ``successful``/``failed``/``unknown``. ``pod`` is a ``Pod``, or its name with
        ``namespace`` and ``pod_uid`` given (the prober's keyword form)."""
        ptype = probe_type[:1].upper() + probe_type[1:].lower()
        if ptype not in PROBE_TYPES:
            raise InvalidInput(f"must be one of {', '.join(PROBE_TYPES)}", field="probe_type")
        if result not in PROBE_RESULTS:
            raise InvalidInput(f"must be one of {', '.join(PROBE_RESULTS)}", field="result")
        if not container:
            raise InvalidInput("must not be empty", field="container")
        if isinstance(pod, str):
            name, ns, uid = pod, namespace, pod_uid
            if not name:
                raise InvalidInput("must not be empty", field="pod")
            if not ns:
                raise InvalidInput("must be given with a pod name", field="namespace")
        else:
            name, ns, uid = pod.meta.name, pod.meta.namespace, pod.meta.uid
        key = (ptype, result, container, name, ns, uid)
        with self._lock:
            self._probes[key] = self._probes.get(key, 0) + 1

    def forget_pod(self, uid: str) -> None:
        """Drop a deleted pod's probe series."""
        with self._lock:
            self._probes = {k: v for k, v in self._probes.items() if k[5] != uid}

    def observe_pod_start(self, duration_s: float) -> None:
        """A pod went from first seen to Running in ``duration_s``."""
        if duration_s < 0:
            raise InvalidInput(f"must be >= 0, got {duration_s}", field="duration_s")
        with self._lock:
            self._pod_start.observe(duration_s)

    def set_pod_start_durations(self, durations_s: Sequence[float]) -> None:
        """Replace the pod-start histogram with one built from every duration so far (for a pod
        layer that keeps the list, as ``PodManager.stats().pod_start_durations_s`` does)."""
        h = _Histogram(DEFAULT_BUCKETS)
        for d in durations_s:
            h.observe(d)
        with self._lock:
            self._pod_start = h

    def set_running(self, pods: int, containers_by_state: Mapping[str, int]) -> None:
        """Running pod sandboxes and containers per state (``created``, ``running``, ``exited``,
        ``unknown``); the stats collector calls this after each pass."""
        with self._lock:
            self._running_pods = pods
            self._running_containers = dict(containers_by_state)

    def request_started(self, method: str, path: str, server_type: str, long_running: bool) -> None:
        key = _http_key(method, path, server_type, long_running)
        with self._lock:
            self._http_inflight[key] = self._http_inflight.get(key, 0) + 1

    def request_finished(
        self, method: str, path: str, server_type: str, long_running: bool, duration_s: float
    ) -> None:
        """Count a served request. ``path`` is the request path; only its first segment is kept
        (upstream's label: ``pods``, ``stats``, ``metrics``…), so cardinality stays bounded."""
        key = _http_key(method, path, server_type, long_running)
        with self._lock:
            if self._http_inflight.get(key, 0) > 0:
                self._http_inflight[key] -= 1
            self._http_total[key] = self._http_total.get(key, 0) + 1
            h = self._http_duration.get(key)
            if h is None:
                h = self._http_duration[key] = _Histogram(DEFAULT_BUCKETS)
            h.observe(duration_s)

    # ---- rendering ----

    def _agent_families(self) -> Iterator[Metric]:
        with self._lock:
            http_labels = ["long_running", "method", "path", "server_type"]
            dur = HistogramMetricFamily(
                "kubelet_http_requests_duration_seconds",
                "[ALPHA] Duration in seconds to serve http requests",
                labels=http_labels,
            )
            for key, h in sorted(self._http_duration.items()):
                dur.add_metric(list(key), h.rows(), h.sum)
            total = CounterMetricFamily(
                "kubelet_http_requests",
                "[ALPHA] Number of the http requests received since the server started",
                labels=http_labels,
            )
            for key, n in sorted(self._http_total.items()):
                total.add_metric(list(key), n)
            inflight = GaugeMetricFamily(
                "kubelet_http_inflight_requests",
                "[ALPHA] Number of the inflight http requests",
                labels=http_labels,
            )
            for key, n in sorted(self._http_inflight.items()):
                inflight.add_metric(list(key), n)
            node = GaugeMetricFamily(
                "kubelet_node_name",
                "[ALPHA] The node's name. The count is always 1.",
                labels=["node"],
            )
            if self.node_name:
                node.add_metric([self.node_name], 1)
            start = HistogramMetricFamily(
                "kubelet_pod_start_duration_seconds",
                "[ALPHA] Duration in seconds for a single pod to go from pending to running.",
            )
            start.add_metric([], self._pod_start.rows(), self._pod_start.sum)
            containers = GaugeMetricFamily(
                "kubelet_running_containers",
                "[ALPHA] Number of containers currently running",
                labels=["container_state"],
            )
            for state in sorted({*CONTAINER_STATES, *self._running_containers}):
                containers.add_metric([state], self._running_containers.get(state, 0))
            pods = GaugeMetricFamily(
                "kubelet_running_pods", "[ALPHA] Number of pods that have a running pod sandbox"
            )
            pods.add_metric([], self._running_pods)
        yield from (inflight, dur, total, node, start, containers, pods)

    def _probe_families(self) -> Iterator[Metric]:
        start = GaugeMetricFamily(
            "process_start_time_seconds",
            "[ALPHA] Start time of the process since unix epoch in seconds.",
        )
        start.add_metric([], self.start_time)
        probes = CounterMetricFamily(
            "prober_probe",
            "[ALPHA] Cumulative number of a liveness, readiness or startup probe for a container "
            "by result.",
            labels=["probe_type", "result", "container", "pod", "namespace", "pod_uid"],
        )
        with self._lock:
            items = sorted(self._probes.items(), key=lambda kv: (kv[0][2], kv[0][4], kv[0][3]))
        for key, n in items:
            probes.add_metric(list(key), n)
        yield from (start, probes)


@functools.lru_cache(maxsize=1024)  # a few keys serve nearly every request; bounded for the rest
def _http_key(
    method: str, path: str, server_type: str, long_running: bool
) -> tuple[str, str, str, str]:
    segment = path.strip("/").split("/", 1)[0]
    return ("true" if long_running else "false", method.upper(), segment, server_type)


_DEFAULT: AgentMetrics | None = None
_DEFAULT_LOCK = threading.Lock()


AUDIT_EVENTS_DROPPED = Counter(
    "pykubelet_audit_events_dropped_total",
    "Audit events dropped because the audit log writer could not keep up.",
    registry=None,
)
"""Incremented by the audit log (``server/audit.py``); served on /metrics."""

AUDIT_EVENTS_SUPPRESSED = Counter(
    "pykubelet_audit_events_suppressed_total",
    "Unauthenticated audit events not written because they exceeded the audit rate limit.",
    registry=None,
)
"""Incremented by the audit observer (``server/audit.py``); served on /metrics."""


def default_metrics() -> AgentMetrics:
    """The process-wide instance (created on first use, with this process's start time)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = AgentMetrics(start_time=_process_start_time())
        return _DEFAULT


def record_probe(
    probe_type: str,
    result: str,
    pod: Pod | str,
    container: str,
    *,
    namespace: str = "",
    pod_uid: str = "",
) -> None:
    """Record a probe outcome on ``default_metrics()`` (see ``AgentMetrics.record_probe``)."""
    default_metrics().record_probe(
        probe_type, result, pod, container, namespace=namespace, pod_uid=pod_uid
    )


def _process_start_time() -> float:
    try:
        with open(f"/proc/{os.getpid()}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return time.time()
    return time.time() - uptime + ticks / 100

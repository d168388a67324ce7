"""Counters of container output a runtime could not write to the log file (disk full, I/O
error). Incremented by the process runtime's log-loss watch (``process/logloss.py``), served on
``/metrics`` through ``stats.agent_metrics.AgentMetrics``."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["CONTAINER_LOG_BYTES_LOST", "CONTAINER_LOG_RECORDS_LOST"]

CONTAINER_LOG_RECORDS_LOST = Counter(
    "pykubelet_container_log_records_lost_total",
    "Container log lines (CRI log records) not written to the log file: disk full, I/O error.",
    registry=None,
)
CONTAINER_LOG_BYTES_LOST = Counter(
    "pykubelet_container_log_bytes_lost_total",
    "Bytes of container output not written to the log file: disk full, I/O error.",
    registry=None,
)

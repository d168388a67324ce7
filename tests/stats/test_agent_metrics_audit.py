"""The audit log's dropped-events counter is served on /metrics with the agent's own series."""

from __future__ import annotations

from prometheus_client import generate_latest

from pykubelet.stats.agent_metrics import AUDIT_EVENTS_DROPPED, AgentMetrics


def test_audit_drops_appear_in_the_agent_registry() -> None:
    before = AUDIT_EVENTS_DROPPED._value.get()
    AUDIT_EVENTS_DROPPED.inc()
    text = generate_latest(AgentMetrics(node_name="n").registry).decode()
    line = next(
        x for x in text.splitlines() if x.startswith("pykubelet_audit_events_dropped_total")
    )
    assert float(line.split()[-1]) == before + 1

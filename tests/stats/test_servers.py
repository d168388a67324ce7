"""The stats routes mounted on the real KubeletServers: 10250 behind x509 auth and the
authorizer (subresources ``stats`` / ``metrics``), 10255 without auth, both counted."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pykubelet.auth.types import Attributes, AuthorizationResult, Decision
from pykubelet.server import ServerBackends
from pykubelet.server.metrics import HttpMetricsObserver
from pykubelet.server.stats import stats_routes
from pykubelet.stats import AgentMetrics, StatsCollector, StatsConfig, StatsService
from tests.server.harness import StaticPods, TinyRuntime, fetch, make_pki, running, settings_for
from tests.stats.fake_source import ListingSource


class OnlyMetrics:
    async def authorize(self, attrs: Attributes) -> AuthorizationResult:
        ok = attrs.verb == "get" and attrs.subresource == "metrics"
        return AuthorizationResult(decision=Decision.ALLOW if ok else Decision.DENY)


async def test_routes_on_both_ports_with_auth_and_request_metrics(tmp_path: Path) -> None:
    collector = StatsCollector(
        StatsConfig(node_name="node-a", root_dir=str(tmp_path)), ListingSource()
    )
    await collector.collect_once()
    metrics = AgentMetrics(node_name="node-a")
    routes = stats_routes(StatsService(collector, metrics))
    pki = make_pki(tmp_path / "pki")
    backends = ServerBackends(
        pods=StaticPods(),
        runtime=TinyRuntime(),
        extra_routes=routes,
        extra_read_only_routes=routes,
        authorizer=OnlyMetrics(),
        observer=HttpMetricsObserver(metrics),
    )
    async with running(settings_for(pki, read_only_port=-1), backends) as servers:
        full, ro = servers.full_port, servers.read_only_port
        assert full is not None and ro is not None
        admin = pki.client_context(pki.admin)

        r = await fetch(ro, "/stats/summary")
        assert r.status == 200 and r.headers["content-type"] == "application/json"
        assert json.loads(r.body)["node"]["nodeName"] == "node-a"
        r = await fetch(ro, "/stats/summary?only_cpu_and_memory=true", method="POST")
        assert r.status == 200 and "fs" not in json.loads(r.body)["node"]

        r = await fetch(full, "/metrics/resource", ctx=pki.client_context(None))
        assert r.status == 401 and r.body == b"Unauthorized"
        r = await fetch(full, "/stats/summary", ctx=admin)
        assert r.status == 403  # nodes/stats is not granted
        assert b"subresource=stats" in r.body
        for path in ("/metrics", "/metrics/resource", "/metrics/cadvisor", "/metrics/probes"):
            r = await fetch(full, path, ctx=admin)
            assert r.status == 200, path
            assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
            list(text_string_to_metric_families(r.body.decode()))

        r = await fetch(full, "/metrics", ctx=admin)
        fams = {f.name: f for f in text_string_to_metric_families(r.body.decode())}
        counted: dict[tuple[str, str], float] = {}
        for s in fams["kubelet_http_requests"].samples:
            key = (s.labels["path"], s.labels["server_type"])
            counted[key] = counted.get(key, 0) + s.value
        assert counted[("stats", "readonly")] == 2
        assert counted[("stats", "readwrite")] == 1
        assert counted[("metrics", "readwrite")] >= 5

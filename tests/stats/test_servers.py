"""The stats routes mounted on the real KubeletServers: 10250 behind x509 auth and the
authorizer (subresources ``stats`` / ``metrics``), 10255 without auth, both counted."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pykubelet.auth.types import Attributes, AuthorizationResult, Decision
from pykubelet.server import ServerBackends
from pykubelet.server.stats import build_stats
from pykubelet.stats import AgentMetrics
from tests.server.harness import (
    Pki,
    StaticPods,
    TinyRuntime,
    fetch,
    make_pki,
    running,
    settings_for,
)


class OnlyMetrics:
    async def authorize(self, attrs: Attributes) -> AuthorizationResult:
        ok = attrs.verb == "get" and attrs.subresource == "metrics"
        return AuthorizationResult(decision=Decision.ALLOW if ok else Decision.DENY)


async def test_routes_on_both_ports_with_auth_and_request_metrics(tmp_path: Path) -> None:
    runtime = TinyRuntime()
    parts = build_stats(
        node_name="node-a", root_dir=str(tmp_path), runtime=runtime, metrics=AgentMetrics()
    )
    pki = make_pki(tmp_path / "pki")
    backends = ServerBackends(
        pods=StaticPods(),
        runtime=runtime,
        extra_routes=parts.routes,
        extra_read_only_routes=parts.routes,
        authorizer=OnlyMetrics(),
        observer=parts.observer,
    )
    housekeeping = asyncio.create_task(parts.collector.run())
    try:
        await asyncio.wait_for(parts.collector.ready.wait(), 10)
        await _exercise(backends, pki)
    finally:
        housekeeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await housekeeping


async def _exercise(backends: ServerBackends, pki: Pki) -> None:
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

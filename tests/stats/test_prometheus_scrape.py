"""Debian's Prometheus scrapes all four endpoints of the real ``KubeletServers`` over HTTPS with
a client certificate (as kube-prometheus does), and its PromQL answers agree with the cgroup
figures of a busy, CPU-throttled test pod."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pykubelet.auth.types import Attributes, AuthorizationResult, Decision
from pykubelet.security.certs import CertPair, create_client_cert
from pykubelet.server import ServerBackends
from pykubelet.server.metrics import HttpMetricsObserver
from pykubelet.server.stats import stats_routes
from pykubelet.stats import AgentMetrics, CgroupReader, StatsCollector, StatsConfig, StatsService
from tests.conftest import free_port
from tests.prereq import require_binary, require_root
from tests.server.harness import Pki, StaticPods, TinyRuntime, make_pki, running, settings_for
from tests.stats.cgroup_env import BUSY, CgroupTree, cgroup_tree
from tests.stats.fake_source import ListingSource

MiB = 1024 * 1024
ENDPOINTS = {
    "kubelet": "/metrics",
    "kubelet-cadvisor": "/metrics/cadvisor",
    "kubelet-resource": "/metrics/resource",
    "kubelet-probes": "/metrics/probes",
}


class OnlyMetrics:
    """Allows ``get nodes/metrics`` and nothing else (kube-prometheus's kubelet access)."""

    async def authorize(self, attrs: Attributes) -> AuthorizationResult:
        ok = attrs.verb == "get" and attrs.resource == "nodes" and attrs.subresource == "metrics"
        return AuthorizationResult(decision=Decision.ALLOW if ok else Decision.DENY)


@pytest.fixture
def tree() -> Iterator[CgroupTree]:
    require_root()
    with cgroup_tree() as t:
        yield t


def _prometheus_config(port: int, pki: Pki, client: CertPair) -> str:
    jobs = []
    for job, path in ENDPOINTS.items():
        jobs.append(
            f"""  - job_name: {job}
    scheme: https
    metrics_path: {path}
    honor_labels: true
    tls_config:
      ca_file: {pki.ca.cert_file}
      cert_file: {client.cert_file}
      key_file: {client.key_file}
      server_name: 127.0.0.1
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""
        )
    return "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n" + "".join(jobs)


@contextlib.contextmanager
def prometheus(binary: str, config: str, workdir: Path) -> Iterator[str]:
    cfg = workdir / "prometheus.yml"
    cfg.write_text(config)
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


async def _query(
    session: aiohttp.ClientSession, base: str, q: str, at: float | None = None
) -> list[dict[str, Any]]:
    params = {"query": q}
    if at is not None:
        params["time"] = f"{at:.3f}"
    try:
        async with session.get(f"{base}/api/v1/query", params=params) as r:
            if r.status != 200:
                return []
            body = await r.json()
    except aiohttp.ClientConnectionError:
        return []
    return list(body["data"]["result"])


async def _until(
    session: aiohttp.ClientSession,
    base: str,
    q: str,
    ok: Callable[[list[dict[str, Any]]], bool],
    timeout_s: float = 60.0,
    at: float | None = None,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    last: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        last = await _query(session, base, q, at)
        if ok(last):
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"{q!r} never satisfied; last answer {last}")


async def test_prometheus_scrapes_every_endpoint_and_agrees_with_cgroups(
    tree: CgroupTree, tmp_path: Path
) -> None:
    binary = require_binary("prometheus")
    source = ListingSource()
    uid = secrets.token_hex(8)
    pod_cg = tree.make(f"pod{uid}")
    ctr_cg = tree.make(f"pod{uid}/busy")
    tree.set_cpu_quota(ctr_cg, 0.5)
    proc = tree.start(ctr_cg, BUSY, 48 * MiB)
    source.add_pod(
        name="busy", uid=uid, cgroup_parent=pod_cg, containers=[("busy", ctr_cg, proc.pid)]
    )

    cfg = StatsConfig(
        node_name="n1", root_dir=str(tmp_path), pods_cgroup=tree.root, housekeeping_interval_s=1.0
    )
    collector = StatsCollector(cfg, source)
    metrics = AgentMetrics(node_name="n1")
    service = StatsService(collector, metrics)
    routes = stats_routes(service)
    pki = make_pki(tmp_path / "pki")
    # A monitoring identity that may only read nodes/metrics, as kube-prometheus's role allows.
    prom_cert = create_client_cert(
        str(tmp_path / "pki" / "ca"), "system:serviceaccount:monitoring:prometheus", [], ca=pki.ca
    )
    backends = ServerBackends(
        pods=StaticPods(),
        runtime=TinyRuntime(),
        extra_routes=routes,
        authorizer=OnlyMetrics(),
        observer=HttpMetricsObserver(metrics),
    )
    reader = CgroupReader.from_host()

    async with asyncio.TaskGroup() as tg:
        housekeeping = tg.create_task(collector.run())
        try:
            await asyncio.wait_for(collector.ready.wait(), 10)
            async with (
                running(settings_for(pki), backends) as servers,
                aiohttp.ClientSession() as session,
            ):
                port = servers.full_port
                assert port is not None
                config = _prometheus_config(port, pki, prom_cert)
                with prometheus(binary, config, tmp_path) as prom:
                    up = await _until(
                        session,
                        prom,
                        "up",
                        lambda r: len(r) == 4 and all(x["value"][1] == "1" for x in r),
                    )
                    assert {x["metric"]["job"] for x in up} == set(ENDPOINTS)

                    # CPU: the rate Prometheus computes vs. the cgroup's own counter over ~10 s.
                    t0, u0 = time.monotonic(), reader.read(ctr_cg).cpu_usage_ns or 0
                    sel = 'container_cpu_usage_seconds_total{pod="busy",container="busy"}'
                    await _until(
                        session,
                        prom,
                        f"count_over_time({sel}[11s])",
                        lambda r: (
                            bool(r)
                            and float(r[0]["value"][1]) >= 10
                            and time.monotonic() - t0 >= 10
                        ),
                        timeout_s=60,
                    )
                    t1, u1 = time.monotonic(), reader.read(ctr_cg).cpu_usage_ns or 0
                    cgroup_rate = (u1 - u0) / 1e9 / (t1 - t0)
                    # Evaluate at the newest sample so rate() does not extrapolate over the
                    # scrape lag at the end of its window.
                    raw = await _query(session, prom, sel + "[12s]")
                    newest = max(float(v[0]) for r in raw for v in r["values"])
                    rates = await _until(
                        session, prom, f"rate({sel}[10s])", lambda r: len(r) == 2, at=newest
                    )
                    assert (
                        cgroup_rate > 0.05
                    )  # busy (the quota caps it at 0.5; load may hold it lower)
                    # One series from /metrics/resource, one from /metrics/cadvisor.
                    assert {r["metric"]["job"] for r in rates} == {
                        "kubelet-resource",
                        "kubelet-cadvisor",
                    }
                    for r in rates:
                        prom_rate = float(r["value"][1])
                        assert prom_rate == pytest.approx(cgroup_rate, rel=0.10), r

                    # Working set: what Prometheus holds vs. the cgroup files right now.
                    ws_sel = (
                        "container_memory_working_set_bytes"
                        '{job="kubelet-resource",pod="busy",container="busy"}'
                    )
                    (ws,) = await _until(session, prom, ws_sel, bool)
                    direct = reader.read(ctr_cg).memory_working_set_bytes or 0
                    assert float(ws["value"][1]) > 48 * MiB
                    assert float(ws["value"][1]) == pytest.approx(direct, rel=0.10)

                    # The cAdvisor series of the same container agrees too.
                    cad = (
                        "container_memory_working_set_bytes"
                        + '{job="kubelet-cadvisor",container="busy"}'
                    )
                    (cws,) = await _until(session, prom, cad, bool)
                    assert float(cws["value"][1]) == pytest.approx(direct, rel=0.10)
        finally:
            housekeeping.cancel()

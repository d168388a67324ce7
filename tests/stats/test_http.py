"""The routes on a real aiohttp server on 127.0.0.1, read with a real client."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from pykubelet.api import Pod
from pykubelet.server.metrics import http_metrics_middleware
from pykubelet.server.stats import stats_routes
from pykubelet.stats import AgentMetrics, StatsCollector, StatsConfig, StatsService
from tests.prereq import require_root
from tests.stats.cgroup_env import SLEEPY, CgroupTree, cgroup_tree
from tests.stats.fake_source import ListingSource

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@pytest.fixture
def tree() -> Iterator[CgroupTree]:
    require_root()
    with cgroup_tree() as t:
        yield t


Served = tuple[str, ListingSource, AgentMetrics]  # base URL, the pods listed, the metrics


@pytest.fixture
async def served(tree: CgroupTree, tmp_path: object) -> AsyncIterator[Served]:
    source = ListingSource()
    for i in range(3):
        uid = secrets.token_hex(8)
        pod_cg = tree.make(f"pod{uid}")
        ctrs = []
        for cname in ("main", "side"):
            cg = tree.make(f"pod{uid}/{cname}")
            p = tree.start(cg, SLEEPY, 2 * 1024 * 1024)
            ctrs.append((cname, cg, p.pid))
        source.add_pod(name=f"pod-{i}", uid=uid, cgroup_parent=pod_cg, containers=ctrs)
    cfg = StatsConfig(node_name="n1", root_dir=str(tmp_path), pods_cgroup=tree.root)
    collector = StatsCollector(cfg, source)
    await collector.collect_once()
    await collector.collect_once()
    metrics = AgentMetrics(node_name="n1")
    app = web.Application(middlewares=[http_metrics_middleware(metrics, "readwrite")])
    app.add_routes(stats_routes(StatsService(collector, metrics)))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", source, metrics
    finally:
        await runner.cleanup()


async def test_summary_get_post_and_only_cpu_and_memory_rule(served: Served) -> None:
    base, _, _ = served
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/stats/summary") as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "application/json"
            full = await r.read()
        assert full.startswith(b'{\n "node": {')
        assert "fs" in json.loads(full)["node"]
        async with s.post(f"{base}/stats/summary?only_cpu_and_memory=true") as r:
            assert r.status == 200
            lite = json.loads(await r.read())
        assert "fs" not in lite["node"] and "network" not in lite["pods"][0]
        # Exactly one value, exactly "true"; anything else is the full summary.
        for q in (
            "only_cpu_and_memory=True",
            "only_cpu_and_memory=true&only_cpu_and_memory=true",
            "only_cpu_and_memory=1",
        ):
            async with s.get(f"{base}/stats/summary?{q}") as r:
                assert "fs" in json.loads(await r.read())["node"], q
        async with s.post(f"{base}/stats/summary", data={"only_cpu_and_memory": "true"}) as r:
            assert "fs" not in json.loads(await r.read())["node"]
        async with s.put(f"{base}/stats/summary") as r:
            assert r.status == 405


async def test_every_exposition_parses_and_has_the_upstream_content_type(served: Served) -> None:
    base, _, _ = served
    async with aiohttp.ClientSession() as s:
        for path in ("/metrics", "/metrics/resource", "/metrics/cadvisor", "/metrics/probes"):
            for method in ("GET", "POST", "DELETE"):
                async with s.request(method, f"{base}{path}") as r:
                    assert r.status == 200, (method, path)
                    assert r.headers["Content-Type"] == CONTENT_TYPE
                    text = await r.text()
            families = list(text_string_to_metric_families(text))
            assert families, path


def _metrics_server_parse(
    text: str,
) -> tuple[dict[str, float], dict[tuple[str, str, str], dict[str, float]]]:
    """What metrics-server (>= 0.6) keeps from /metrics/resource: node and container points
    with a timestamp and non-zero values; containers that restarted after the sample are dropped."""
    node: dict[str, float] = {}
    ctrs: dict[tuple[str, str, str], dict[str, float]] = {}
    starts: dict[tuple[str, str, str], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name in ("node_cpu_usage_seconds_total", "node_memory_working_set_bytes"):
                assert s.timestamp is not None, s
                node[s.name] = s.value
            key = (
                s.labels.get("namespace", ""),
                s.labels.get("pod", ""),
                s.labels.get("container", ""),
            )
            if s.name == "container_start_time_seconds":
                starts[key] = s.value
            if s.name in (
                "container_cpu_usage_seconds_total",
                "container_memory_working_set_bytes",
            ):
                if s.timestamp is None:
                    continue  # metrics-server requires timestamps
                ctrs.setdefault(key, {})[s.name] = s.value
                ctrs[key]["ts"] = float(s.timestamp)
    kept = {}
    for key, vals in ctrs.items():
        cpu = vals.get("container_cpu_usage_seconds_total", 0)
        mem = vals.get("container_memory_working_set_bytes", 0)
        if cpu <= 0 or mem <= 0:
            continue
        if key in starts and starts[key] > vals["ts"]:
            continue
        kept[key] = vals
    return node, kept


async def test_metrics_server_finds_every_running_pod_and_container(served: Served) -> None:
    base, source, _ = served
    async with aiohttp.ClientSession() as s, s.get(f"{base}/metrics/resource") as r:
        text = await r.text()
    assert "\nscrape_error 0.0\n" in text and "\nresource_scrape_error 0.0\n" in text
    node, kept = _metrics_server_parse(text)
    assert node["node_cpu_usage_seconds_total"] > 0
    assert node["node_memory_working_set_bytes"] > 0
    expected = {
        (sb.namespace, sb.name, c.name)
        for sb in source.sandboxes
        for c in source.containers
        if c.sandbox_id == sb.id
    }
    assert set(kept) == expected
    now = time.time()
    for vals in kept.values():
        assert abs(vals["ts"] - now) < 60


async def test_cadvisor_labels_and_network_on_sandbox_series(served: Served) -> None:
    base, source, _ = served
    async with aiohttp.ClientSession() as s, s.get(f"{base}/metrics/cadvisor") as r:
        text = await r.text()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    ws = fams["container_memory_working_set_bytes"]
    for sample in ws.samples:
        assert set(sample.labels) == {"container", "id", "image", "name", "namespace", "pod"}
    main = [x for x in ws.samples if x.labels["container"] == "main"]
    assert len(main) == 3 and all(x.labels["image"] == "localhost/main:1" for x in main)
    net = [x for x in fams["container_network_receive_bytes"].samples if x.labels["id"] != "/"]
    assert net and {x.labels["container"] for x in net} == {"POD"}
    assert {x.labels["pod"] for x in net} == {sb.name for sb in source.sandboxes}
    for name in (
        "container_cpu_usage_seconds",
        "container_memory_rss",
        "container_memory_usage_bytes",
        "container_fs_usage_bytes",
        "machine_cpu_cores",
        "machine_memory_bytes",
    ):
        assert name in fams, name


async def test_probe_recording_and_agent_series(served: Served) -> None:
    base, _, metrics = served
    pod = Pod.from_dict(
        {
            "metadata": {"name": "web", "namespace": "prod", "uid": "u-1"},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]},
        }
    )
    metrics.record_probe("Liveness", "successful", pod, "app")
    metrics.record_probe("liveness", "successful", pod, "app")
    metrics.record_probe("Readiness", "failed", pod, "app")
    metrics.observe_pod_start(1.5)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/metrics/probes") as r:
            probes = await r.text()
        async with s.get(f"{base}/pods-does-not-exist") as r:
            assert r.status == 404
        async with s.get(f"{base}/metrics") as r:
            agent = await r.text()
    assert (
        'prober_probe_total{container="app",namespace="prod",pod="web",pod_uid="u-1",'
        'probe_type="Liveness",result="successful"} 2.0'
    ) in probes
    assert "process_start_time_seconds " in probes
    fams = {f.name: f for f in text_string_to_metric_families(agent)}
    assert fams["kubelet_running_pods"].samples[0].value == 3
    running = {
        x.labels["container_state"]: x.value for x in fams["kubelet_running_containers"].samples
    }
    assert running["running"] == 6
    assert fams["kubelet_pod_start_duration_seconds"].type == "histogram"
    http = fams["kubelet_http_requests"].samples
    assert any(
        x.labels["path"] == "metrics" and x.labels["server_type"] == "readwrite" for x in http
    )
    assert "process_cpu_seconds" in fams and "kubelet_http_inflight_requests" in fams
    metrics.forget_pod("u-1")
    from prometheus_client import generate_latest

    assert b"prober_probe_total{" not in generate_latest(metrics.probe_registry)


def test_record_probe_rejects_bad_values() -> None:
    from pykubelet.core.errors import InvalidInput

    m = AgentMetrics()
    pod = Pod.from_dict(
        {
            "metadata": {"name": "p", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }
    )
    with pytest.raises(InvalidInput, match="probe_type"):
        m.record_probe("Sideways", "successful", pod, "c")
    with pytest.raises(InvalidInput, match="result"):
        m.record_probe("Startup", "ok", pod, "c")


def test_http_metrics_observer_counts_and_chains() -> None:
    from prometheus_client import generate_latest

    from pykubelet.server import RequestRecord
    from pykubelet.server.metrics import HttpMetricsObserver

    def record(port_kind: str, path: str, query: str, duration_s: float) -> RequestRecord:
        return RequestRecord(
            port_kind=port_kind, method="GET", path=path, query=query, remote_addr="127.0.0.1",
            user_agent="test", user=None, verb="get", resource="nodes", subresource="",
            subresources=(), decision="none", reason="", status=200, received_at=0.0,
            auth_duration_s=0.0, duration_s=duration_s,
        )  # fmt: skip

    seen: list[RequestRecord] = []

    class Next:
        def observe(self, r: RequestRecord) -> None:
            seen.append(r)

    m = AgentMetrics()
    obs = HttpMetricsObserver(m, Next())
    obs.observe(record("full", "/pods", "", 0.002))
    obs.observe(record("read-only", "/stats/summary", "", 0.3))
    obs.observe(record("full", "/containerLogs/ns/p/c", "follow=true", 9.0))
    obs.observe(record("healthz", "/healthz", "", 0.001))
    assert len(seen) == 4
    text = generate_latest(m.registry).decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    got = {
        (x.labels["path"], x.labels["server_type"], x.labels["long_running"]): x.value
        for x in fams["kubelet_http_requests"].samples
    }
    assert got == {
        ("pods", "readwrite", "false"): 1,
        ("stats", "readonly", "false"): 1,
        ("containerLogs", "readwrite", "true"): 1,
    }


async def test_before_the_first_pass(tmp_path: object) -> None:
    collector = StatsCollector(StatsConfig(node_name="n1", root_dir=str(tmp_path)), ListingSource())
    app = web.Application()
    app.add_routes(stats_routes(StatsService(collector, AgentMetrics())))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{base}/stats/summary") as r:
                assert r.status == 500
                assert await r.text() == "Internal Error: stats are not collected yet"
            async with s.get(f"{base}/metrics/resource") as r:
                text = await r.text()
            assert "\nresource_scrape_error 1.0\n" in text and "\nscrape_error 1.0\n" in text
            async with s.get(f"{base}/metrics/cadvisor") as r:
                assert r.status == 200
                assert list(text_string_to_metric_families(await r.text())) == []
    finally:
        await runner.cleanup()


def test_record_probe_keyword_form_used_by_the_prober() -> None:
    from prometheus_client import generate_latest

    from pykubelet.core.errors import InvalidInput

    m = AgentMetrics()
    m.record_probe(
        probe_type="Startup", result="unknown", namespace="ns", pod="p", pod_uid="u9",
        container="c",
    )  # fmt: skip
    text = generate_latest(m.probe_registry).decode()
    assert (
        'prober_probe_total{container="c",namespace="ns",pod="p",pod_uid="u9",'
        'probe_type="Startup",result="unknown"} 1.0'
    ) in text
    with pytest.raises(InvalidInput, match="namespace"):
        m.record_probe("Startup", "unknown", "p", "c")


def test_pod_start_durations_from_the_pod_layer(tmp_path: object) -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Counters:
        pod_start_durations_s: tuple[float, ...]

    durations = [0.2, 3.0, 40.0]
    collector = StatsCollector(StatsConfig(node_name="n1", root_dir=str(tmp_path)), ListingSource())
    service = StatsService(collector, AgentMetrics(), lambda: Counters(tuple(durations)))
    fams = {f.name: f for f in text_string_to_metric_families(service.agent_metrics().decode())}
    samples = {
        (s.name, s.labels.get("le", "")): s.value
        for s in fams["kubelet_pod_start_duration_seconds"].samples
    }
    assert samples[("kubelet_pod_start_duration_seconds_count", "")] == 3
    assert samples[("kubelet_pod_start_duration_seconds_bucket", "0.25")] == 1
    assert samples[("kubelet_pod_start_duration_seconds_bucket", "5")] == 2
    assert samples[("kubelet_pod_start_duration_seconds_bucket", "+Inf")] == 3
    assert samples[("kubelet_pod_start_duration_seconds_sum", "")] == pytest.approx(43.2)
    durations.append(1.0)
    again = service.agent_metrics().decode()
    assert "kubelet_pod_start_duration_seconds_count 4.0" in again

"""Exposition bytes: the fast cAdvisor writer against prometheus_client's own renderer, and the
resource series' names, HELP prefixes and timestamps, on a synthetic snapshot."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pykubelet.stats.cadvisor_metrics import cadvisor_families
from pykubelet.stats.exposition import FunctionCollector, private_registry, render
from pykubelet.stats.families import Family, render_text, to_metric
from pykubelet.stats.resource_metrics import resource_metric_families
from pykubelet.stats.types import (
    ContainerSample,
    CpuSample,
    FsSample,
    InterfaceSample,
    MemorySample,
    NetworkSample,
    NodeSample,
    PodSample,
    Snapshot,
)

T = 1_700_000_123.456


def _snapshot(error: str = "") -> Snapshot:
    cpu = CpuSample(
        time=T, usage_core_ns=1_234_567_890_123, usage_nano_cores=5, user_ns=7, system_ns=3
    )
    mem = MemorySample(
        time=T,
        usage_bytes=3 << 30,
        working_set_bytes=2 << 30,
        rss_bytes=1 << 20,
        limit_bytes=4 << 30,
    )
    fs = FsSample(
        time=T,
        used_bytes=4096,
        capacity_bytes=10**12,
        available_bytes=10**11,
        inodes=10**6,
        inodes_free=10**5,
        inodes_used=12,
    )
    iface = InterfaceSample(
        name="eth0",
        rx_bytes=1,
        rx_packets=2,
        rx_errors=3,
        rx_dropped=4,
        tx_bytes=5,
        tx_packets=6,
        tx_errors=7,
        tx_dropped=8,
    )
    net = NetworkSample(time=T, interfaces=(iface,))
    ctr = ContainerSample(
        name="app",
        id="c1",
        image='img"with\\odd\nchars',
        start_time=T - 60,
        cgroup_path="kp/pod1/c1",
        cpu=cpu,
        memory=mem,
        rootfs=fs,
        pids=2,
    )
    pod = PodSample(
        name="web",
        namespace="prod",
        uid="u1",
        start_time=T - 70,
        containers=(ctr,),
        sandbox_id="sb1",
        cgroup_path="kp/pod1",
        cpu=cpu,
        memory=mem,
        network=net,
    )
    node = NodeSample(
        node_name="n1",
        boot_time=T - 1000,
        cpu=cpu,
        memory=mem,
        network=net,
        fs=fs,
        num_cores=2,
        memory_capacity_bytes=8 << 30,
        boot_id="b",
        machine_id="m",
    )
    return Snapshot(time=T, node=node, pods=(pod,), error=error)


def test_fast_writer_matches_prometheus_client_byte_for_byte() -> None:
    fams = cadvisor_families(_snapshot())
    ours = render_text(fams)
    theirs = generate_latest(
        private_registry(FunctionCollector(lambda: [to_metric(f) for f in fams]))
    )
    assert ours == theirs
    parsed = {f.name: f for f in text_string_to_metric_families(ours.decode())}
    (usage,) = [
        s for s in parsed["container_cpu_usage_seconds"].samples if s.labels["container"] == "app"
    ]
    assert usage.labels["image"] == 'img"with\\odd\nchars'
    assert usage.labels["cpu"] == "total"
    assert usage.timestamp is not None and abs(float(usage.timestamp) - T) < 0.001


def test_writer_escapes_help_and_labels() -> None:
    fam = Family(name="x_total", type="counter", help="back\\slash\nnewline")
    fam.add((("a", 'q"'), ("b", "n\n")), 1.5e9, 12.5)
    fam.add((("a", "plain"), ("b", "")), float("inf"))
    ours = render_text([fam])
    assert b'x_total{a="q\\"",b="n\\n"} 1.5e+09 12500\n' in ours
    assert b'x_total{a="plain",b=""} +Inf\n' in ours
    assert b"# HELP x_total back\\\\slash\\nnewline\n" in ours
    lib = generate_latest(private_registry(FunctionCollector(lambda: [to_metric(fam)])))
    assert ours == lib


HELP_CPU = "[ALPHA] Cumulative cpu time consumed by the container in core-seconds"
HELP_ERR = "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise"
APP = '{container="app",namespace="prod",pod="web"}'


def test_resource_metrics_names_help_and_timestamps() -> None:
    reg = private_registry(FunctionCollector(resource_metric_families(_snapshot)))
    lines = render(reg).decode().splitlines()
    assert f"# HELP container_cpu_usage_seconds_total {HELP_CPU}" in lines
    assert f"# HELP resource_scrape_error {HELP_ERR}" in lines
    assert f"container_cpu_usage_seconds_total{APP} 1234.567890123 1700000123456" in lines
    assert f"container_memory_working_set_bytes{APP} 2.147483648e+09 1700000123456" in lines
    assert (
        'pod_cpu_usage_seconds_total{namespace="prod",pod="web"} 1234.567890123 1700000123456'
        in lines
    )
    assert "node_memory_working_set_bytes 2.147483648e+09 1700000123456" in lines
    assert f"container_start_time_seconds{APP} 1.700000063456e+09" in lines
    assert "scrape_error 0.0" in lines and "resource_scrape_error 0.0" in lines
    names = [ln.split()[2] for ln in lines if ln.startswith("# TYPE")]
    assert names == sorted(names)


def test_scrape_error_when_the_last_pass_failed_or_nothing_collected() -> None:
    failed = render(
        private_registry(FunctionCollector(resource_metric_families(lambda: _snapshot("boom"))))
    )
    assert b"\nscrape_error 1.0\n" in failed and b"\nresource_scrape_error 1.0\n" in failed
    empty = render(private_registry(FunctionCollector(resource_metric_families(lambda: None))))
    assert b"\nresource_scrape_error 1.0\n" in empty
    assert b"container_cpu_usage_seconds_total{" not in empty

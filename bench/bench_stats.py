"""Stats at 110 pods: endpoint latency and housekeeping CPU cost.

Creates 110 pod cgroups, each with one container cgroup holding a sleeping busybox process in
a network namespace of its own (a veth pair ``eth0``/``peer0``),
lists them to the collector as a runtime would, serves the routes on 127.0.0.1 and measures:

* p50 / p99 latency of /stats/summary, /metrics/resource and /metrics/cadvisor (real HTTP);
* CPU seconds per housekeeping pass (whole process: listing, thread reads, assembly) and the
  resulting share of one core at the default 10 s interval.

Needs root (cgroups). Runs in well under two minutes. Cleans up its processes and cgroups.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pykubelet.runtime.types import (
    ContainerState,
    ContainerStatus,
    SandboxState,
    SandboxStatus,
)
from pykubelet.server.stats import stats_routes
from pykubelet.stats import (
    AgentMetrics,
    CgroupReader,
    StatsCollector,
    StatsConfig,
    StatsService,
)

PODS = 110
REQUESTS = 200
PASSES = 20
COLD = 30
PATHS = (
    "/stats/summary",
    "/stats/summary?only_cpu_and_memory=true",
    "/metrics/resource",
    "/metrics/cadvisor",
)
INTERVAL_S = 10.0
BUSYBOX = "/bin/busybox"


class Listing:
    def __init__(self) -> None:
        self.sandboxes: list[SandboxStatus] = []
        self.containers: list[ContainerStatus] = []

    async def list_pod_sandboxes(self) -> Sequence[SandboxStatus]:
        return self.sandboxes

    async def list_containers(self, sandbox_id: str | None = None) -> Sequence[ContainerStatus]:
        return self.containers


def _bases(reader: CgroupReader) -> list[str]:
    v1 = reader.mounts.v1
    bases = {v1[c] for c in ("cpu", "cpuacct", "memory", "pids") if c in v1}
    if not v1.get("memory") and reader.mounts.unified:
        bases.add(reader.mounts.unified)
    return sorted(bases)


def setup(
    reader: CgroupReader, root: str
) -> tuple[Listing, list[subprocess.Popen[bytes]], list[str]]:
    listing, procs, made = Listing(), [], []
    bases = _bases(reader)
    for base in bases:
        os.mkdir(os.path.join(base, root))
        made.append(os.path.join(base, root))
    now = time.time()
    for i in range(PODS):
        uid = f"{i:04d}{secrets.token_hex(6)}"
        pod_cg, ctr_cg = f"{root}/pod{uid}", f"{root}/pod{uid}/app"
        for base in bases:
            for rel in (pod_cg, ctr_cg):
                os.mkdir(os.path.join(base, rel))
                made.append(os.path.join(base, rel))
        files = [os.path.join(b, ctr_cg, "cgroup.procs") for b in bases]

        def enter(files: list[str] = files) -> None:
            for f in files:
                with open(f, "w") as fh:
                    fh.write(str(os.getpid()))

        # Each pod gets a network namespace of its own with an eth0, as a CNI pod has.
        p = subprocess.Popen(
            [
                "unshare",
                "--net",
                "/bin/sh",
                "-c",
                f"ip link add eth0 type veth peer name peer0 && ip link set eth0 up; "
                f"exec {BUSYBOX} sleep 600",
            ],
            preexec_fn=enter,
        )
        procs.append(p)
        sb = SandboxStatus(
            id=f"sb{uid}",
            name=f"pod-{i:03d}",
            namespace="bench",
            uid=uid,
            attempt=0,
            state=SandboxState.READY,
            created_at=now,
            netns_path=f"/proc/{p.pid}/ns/net",
            cgroup_parent=pod_cg,
        )
        listing.sandboxes.append(sb)
        listing.containers.append(
            ContainerStatus(
                id=f"c{uid}",
                sandbox_id=sb.id,
                name="app",
                attempt=0,
                state=ContainerState.RUNNING,
                image="localhost/busybox:1",
                created_at=now,
                started_at=now,
                pid=p.pid,
                cgroup_path=ctr_cg,
            )
        )
    return listing, procs, made


def teardown(procs: list[subprocess.Popen[bytes]], made: list[str]) -> None:
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.wait()
    for d in reversed(made):
        for _ in range(100):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def measure(listing: Listing, root: str, tmp: str) -> None:
    cfg = StatsConfig(node_name="bench", root_dir=tmp, pods_cgroup=root)
    collector = StatsCollector(cfg, listing)
    service = StatsService(collector, AgentMetrics(node_name="bench"))
    await collector.collect_once()
    cpu_passes, wall_passes = [], []
    for _ in range(PASSES):
        c0, w0 = time.process_time(), time.perf_counter()
        await collector.collect_once()
        cpu_passes.append(time.process_time() - c0)
        wall_passes.append(time.perf_counter() - w0)
    snap = collector.latest()
    assert snap is not None and len(snap.pods) == PODS
    assert all(p.containers[0].memory is not None for p in snap.pods)

    app = web.Application()
    app.add_routes(stats_routes(service))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rows = []
    try:
        async with aiohttp.ClientSession() as s:
            for path in PATHS:
                lat, size = [], 0
                for _ in range(REQUESTS):
                    t0 = time.perf_counter()
                    async with s.get(f"http://127.0.0.1:{port}{path}") as r:
                        body = await r.read()
                        assert r.status == 200
                    lat.append(time.perf_counter() - t0)
                    size = len(body)
                rows.append((path, statistics.median(lat), pct(lat, 0.99), size))
            # Every endpoint has now been scraped, so each pass renders them ahead.
            cold_rows = []
            pre0, passes0 = service.prerender_cpu_s, collector.passes
            scrape_cpu: list[float] = []
            for path in PATHS:
                lat = []
                for _ in range(COLD):
                    await collector.collect_once()
                    c0 = time.process_time()
                    t0 = time.perf_counter()
                    async with s.get(f"http://127.0.0.1:{port}{path}") as r:
                        await r.read()
                        assert r.status == 200
                    lat.append(time.perf_counter() - t0)
                    scrape_cpu.append(time.process_time() - c0)
                cold_rows.append((path, statistics.median(lat), pct(lat, 0.99), max(lat)))
            prerender_per_pass = (service.prerender_cpu_s - pre0) / (collector.passes - passes0)
    finally:
        await runner.cleanup()

    print(f"pykubelet stats benchmark: {PODS} pods; loopback HTTP, one client")
    print()
    print(f"warm: {REQUESTS} requests per endpoint between two housekeeping passes")
    print(f"{'endpoint':45} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>9}")
    for path, p50, p99, size in rows:
        print(f"{path:45} {p50 * 1e3:8.2f} {p99 * 1e3:8.2f} {size:9d}")
    print()
    print(f"first request after a pass ({COLD} per endpoint; body rendered ahead by the pass)")
    print(f"{'endpoint':45} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>9}")
    for path, p50, p99, mx in cold_rows:
        print(f"{path:45} {p50 * 1e3:8.2f} {p99 * 1e3:8.2f} {mx * 1e3:9.2f}")
    per_pass = statistics.mean(cpu_passes)
    print()
    print(f"housekeeping pass ({PODS} pods, {PASSES} passes):")
    print(f"  wall per pass           {statistics.mean(wall_passes) * 1e3:8.1f} ms")
    print(f"  CPU per pass            {per_pass * 1e3:8.1f} ms")
    print(f"  share of one core @10 s {per_pass / INTERVAL_S * 100:8.3f} %")
    print(
        f"  + rendering all 4 scraped bodies ahead {prerender_per_pass * 1e3:.1f} ms CPU per pass"
    )
    total = per_pass + prerender_per_pass
    print(
        f"  total share of one core @10 s, all endpoints scraped {total / INTERVAL_S * 100:.3f} %"
    )


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench_stats needs root (it creates cgroups)")
    reader = CgroupReader.from_host()
    root = f"pykubelet-bench-{secrets.token_hex(4)}"
    listing = Listing()
    procs: list[subprocess.Popen[bytes]] = []
    made: list[str] = []
    import tempfile

    try:
        listing, procs, made = setup(reader, root)
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(measure(listing, root, tmp))
    finally:
        teardown(procs, made)


if __name__ == "__main__":
    main()

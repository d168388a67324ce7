"""The collector over real cgroups and processes this test creates."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from pykubelet.api import Pod
from pykubelet.core.errors import InvalidInput
from pykubelet.runtime import SandboxStatus
from pykubelet.stats import (
    AgentMetrics,
    CgroupReader,
    StatsCollector,
    StatsConfig,
    StatsService,
    encode_summary,
    upper_dirs_under,
)
from tests.prereq import require_root
from tests.stats.cgroup_env import BUSY, SLEEPY, CgroupTree, cgroup_tree, read_usage_ns
from tests.stats.fake_source import ListingSource

MiB = 1024 * 1024


@pytest.fixture
def tree() -> Iterator[CgroupTree]:
    require_root()
    with cgroup_tree() as t:
        yield t


def _pod_with(tree: CgroupTree, source: ListingSource, name: str, script: str, mem: int) -> str:
    uid = secrets.token_hex(8)
    pod_cg = tree.make(f"pod{uid}")
    ctr_cg = tree.make(f"pod{uid}/{name}")
    p = tree.start(ctr_cg, script, mem)
    source.add_pod(name=name, uid=uid, cgroup_parent=pod_cg, containers=[(name, ctr_cg, p.pid)])
    return uid


def _write(path: str, data: bytes) -> None:
    Path(path).write_bytes(data)


async def _wait_for(pred: Callable[[], bool], timeout_s: float = 10.0) -> None:
    import asyncio

    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_container_cpu_rate_and_working_set_match_the_cgroup(
    tree: CgroupTree, tmp_path: object
) -> None:
    source = ListingSource()
    uid = _pod_with(tree, source, "busy", BUSY, 40 * MiB)
    tree.set_cpu_quota(f"{tree.root}/pod{uid}/busy", 0.5)
    reader = CgroupReader.from_host()
    cfg = StatsConfig(node_name="n1", root_dir=str(tmp_path), pods_cgroup=tree.root)
    collector = StatsCollector(cfg, source, cgroups=reader)

    # Bracket each pass with direct reads of the cgroup, so the rate the collector computes
    # must fall between the slowest and fastest rates those reads allow; no tolerance needed.
    ctr_cg = source.containers[0].cgroup_path
    ta0, a0 = time.monotonic(), read_usage_ns(reader, ctr_cg)
    first = await collector.collect_once()
    ta1, a1 = time.monotonic(), read_usage_ns(reader, ctr_cg)
    await _wait_for(lambda: time.monotonic() - ta1 >= 1.0)
    tb0, b0 = time.monotonic(), read_usage_ns(reader, ctr_cg)
    snap = await collector.collect_once()
    tb1, b1 = time.monotonic(), read_usage_ns(reader, ctr_cg)

    assert [p.uid for p in snap.pods] == [uid]
    (c,) = snap.pods[0].containers
    assert c.cpu is not None and c.memory is not None
    assert first.pods[0].containers[0].cpu is not None
    assert first.pods[0].containers[0].cpu.usage_nano_cores is None  # one sample: no rate yet
    rate = c.cpu.usage_nano_cores
    assert rate is not None
    assert (b0 - a1) / (tb1 - ta0) <= rate <= (b1 - a0) / (tb0 - ta1)
    assert 0.02e9 < rate < 0.6e9  # busy (load may slow it), and throttled to half a core
    direct = reader.read(c.cgroup_path)
    assert direct.memory_working_set_bytes is not None
    assert c.memory.working_set_bytes == pytest.approx(direct.memory_working_set_bytes, rel=0.1)
    assert c.memory.working_set_bytes > 40 * MiB
    assert c.memory.rss_bytes > 40 * MiB
    assert c.pids == 1
    pod = snap.pods[0]
    assert pod.cpu is not None and pod.cpu.usage_core_ns >= c.cpu.usage_core_ns
    assert pod.memory is not None and pod.memory.working_set_bytes >= c.memory.working_set_bytes
    assert pod.network is not None  # read from the container's netns (the host's here)
    names = [s.name for s in snap.node.system_containers]
    assert names == ["kubelet", "pods"]


async def test_vanished_container_is_not_an_error(tree: CgroupTree, tmp_path: object) -> None:
    source = ListingSource()
    uid = _pod_with(tree, source, "short", SLEEPY, MiB)
    # A container the runtime still lists but whose cgroup and process are gone.
    source.add_pod(
        name="ghost",
        uid="ghost-uid",
        cgroup_parent=f"{tree.root}/podghost",
        containers=[("ghost", f"{tree.root}/podghost/ghost", 2**22 + 7)],
    )
    cfg = StatsConfig(node_name="n1", root_dir=str(tmp_path))
    collector = StatsCollector(cfg, source)
    snap = await collector.collect_once()
    by_uid = {p.uid: p for p in snap.pods}
    assert by_uid[uid].containers[0].memory is not None
    ghost = by_uid["ghost-uid"]
    assert ghost.containers[0].cpu is None and ghost.containers[0].memory is None
    assert not snap.error
    body = json.loads(encode_summary(snap))
    ghost_doc = next(p for p in body["pods"] if p["podRef"]["uid"] == "ghost-uid")
    assert "cpu" not in ghost_doc["containers"][0]


async def test_emptydir_logs_and_ephemeral_storage(tree: CgroupTree, tmp_path: object) -> None:
    root = str(tmp_path)
    source = ListingSource()
    uid = _pod_with(tree, source, "app", SLEEPY, MiB)
    vol = os.path.join(root, "pods", uid, "volumes", "kubernetes.io~empty-dir", "scratch")
    os.makedirs(vol)
    _write(os.path.join(vol, "data"), os.urandom(256 * 1024))
    logdir = os.path.join(root, "logs", "app")
    os.makedirs(logdir)
    _write(os.path.join(logdir, "0.log"), b"x" * 64 * 1024)
    c = source.containers[0]
    from dataclasses import replace

    source.containers[0] = replace(c, log_path=os.path.join(logdir, "0.log"))

    class Lister:
        def list_pods(self) -> list[Pod]:
            return [
                Pod.from_dict(
                    {
                        "metadata": {"name": "app", "namespace": "default", "uid": uid},
                        "spec": {
                            "containers": [{"name": "app", "image": "busybox"}],
                            "volumes": [{"name": "scratch", "emptyDir": {}}],
                        },
                    }
                )
            ]

        def get_pod(self, namespace: str, name: str) -> Pod | None:
            return None

        def sync_loop_healthy(self) -> bool:
            return True

    upper = os.path.join(root, "runtime", "containers", c.id, "upper")
    os.makedirs(os.path.join(upper, "tmp"))
    _write(os.path.join(upper, "tmp", "scribble"), b"y" * 128 * 1024)
    cfg = StatsConfig(
        node_name="n1",
        root_dir=root,
        rootfs_dir=upper_dirs_under(os.path.join(root, "runtime", "containers")),
    )
    snap = await StatsCollector(cfg, source, Lister()).collect_once()
    pod = snap.pods[0]
    (v,) = pod.volumes
    assert v.name == "scratch" and v.fs.used_bytes is not None
    assert v.fs.used_bytes >= 256 * 1024
    logs = pod.containers[0].logs
    assert logs is not None and logs.used_bytes is not None and logs.used_bytes >= 64 * 1024
    rootfs = pod.containers[0].rootfs
    assert rootfs is not None and rootfs.used_bytes is not None
    assert rootfs.used_bytes >= 128 * 1024 and rootfs.inodes_used == 3
    eph = pod.ephemeral_storage
    assert eph is not None
    assert eph.used_bytes == v.fs.used_bytes + logs.used_bytes + rootfs.used_bytes
    doc = json.loads(encode_summary(snap))
    pdoc = doc["pods"][0]
    assert pdoc["volume"][0]["name"] == "scratch"
    assert list(pdoc)[:3] == ["podRef", "startTime", "containers"]
    assert pdoc["ephemeral-storage"]["usedBytes"] == eph.used_bytes


async def test_summary_shape_one_space_indent_and_cpu_memory_only(
    tree: CgroupTree, tmp_path: object
) -> None:
    source = ListingSource()
    _pod_with(tree, source, "web", SLEEPY, MiB)
    collector = StatsCollector(StatsConfig(node_name="n1", root_dir=str(tmp_path)), source)
    await collector.collect_once()
    service = StatsService(collector, AgentMetrics())
    full = service.summary()
    assert full.startswith(b'{\n "node": {\n  "nodeName": "n1",\n  "systemContainers": [')
    assert not full.endswith(b"\n")
    doc = json.loads(full)
    assert list(doc) == ["node", "pods"]
    assert {"network", "fs", "runtime", "rlimit"} <= set(doc["node"])
    lite = json.loads(service.summary(only_cpu_and_memory=True))
    assert list(lite["node"]) == ["nodeName", "systemContainers", "startTime", "cpu", "memory"]
    assert set(lite["pods"][0]) == {"podRef", "startTime", "containers", "cpu", "memory"}
    assert set(lite["pods"][0]["containers"][0]) == {"name", "startTime", "cpu", "memory"}
    t = lite["pods"][0]["containers"][0]["cpu"]["time"]
    assert len(t) == 20 and t.endswith("Z")


def test_config_rejects_bad_values() -> None:
    with pytest.raises(InvalidInput, match="housekeeping_interval_s"):
        StatsConfig(node_name="n", root_dir="/", housekeeping_interval_s=0)
    with pytest.raises(InvalidInput, match="node_name"):
        StatsConfig(node_name="", root_dir="/")


async def test_housekeeping_loop_keeps_going_after_a_failed_pass(tmp_path: object) -> None:
    import asyncio

    from pykubelet.core.clock import FakeClock
    from pykubelet.core.errors import Unavailable

    class Flaky(ListingSource):
        fail = False

        async def list_pod_sandboxes(self) -> Sequence[SandboxStatus]:
            if self.fail:
                raise Unavailable("runtime is down")
            return await super().list_pod_sandboxes()

    source = Flaky()
    clock = FakeClock()
    cfg = StatsConfig(node_name="n1", root_dir=str(tmp_path), housekeeping_interval_s=10)
    collector = StatsCollector(cfg, source, clock=clock)
    service = StatsService(collector, AgentMetrics())
    task = asyncio.create_task(collector.run())
    try:
        await asyncio.wait_for(collector.ready.wait(), 10)
        assert collector.passes == 1
        assert b"\nresource_scrape_error 0.0\n" in service.resource_metrics()
        await clock.advance(1.0)  # the quick second pass
        await _wait_for(lambda: collector.passes == 2)
        source.fail = True
        await clock.advance(10.0)
        await _wait_for(lambda: bool((latest := collector.latest()) and latest.error))
        assert collector.passes == 2
        assert b"\nresource_scrape_error 1.0\n" in service.resource_metrics()
        source.fail = False
        await clock.advance(10.0)
        await _wait_for(lambda: collector.passes == 3)
        assert b"\nresource_scrape_error 0.0\n" in service.resource_metrics()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_pod_network_comes_from_the_sandbox_network_namespace(
    tree: CgroupTree, tmp_path: object
) -> None:
    from dataclasses import replace

    from tests.prereq import require_binary
    from tests.stats.cgroup_env import NETNS_HOLDER

    require_binary("unshare")
    require_binary("ip")
    source = ListingSource()
    uid = _pod_with(tree, source, "app", SLEEPY, MiB)  # the container stays in the host netns
    holder = tree.start_argv(tree.make(f"pod{uid}/sandbox"), NETNS_HOLDER)
    source.sandboxes[0] = replace(source.sandboxes[0], netns_path=f"/proc/{holder.pid}/ns/net")
    snap = await StatsCollector(
        StatsConfig(node_name="n1", root_dir=str(tmp_path)), source
    ).collect_once()
    net = snap.pods[0].network
    assert net is not None
    assert {i.name for i in net.interfaces} == {"eth0", "peer0"}
    eth0 = net.default
    assert eth0 is not None and eth0.name == "eth0"
    assert eth0.tx_packets >= 1  # the ARP requests
    peer0 = next(i for i in net.interfaces if i.name == "peer0")
    assert peer0.rx_packets >= 1 and peer0.rx_bytes == eth0.tx_bytes
    doc = json.loads(encode_summary(snap))["pods"][0]["network"]
    assert doc["name"] == "eth0" and doc["txBytes"] == eth0.tx_bytes
    assert [i["name"] for i in doc["interfaces"]] == [i.name for i in net.interfaces]


async def test_running_container_without_cgroup_figures_reports_its_process(
    tree: CgroupTree, tmp_path: object
) -> None:
    """metrics-server drops zero values: a container whose cgroup is empty (or absent, on a
    runtime without cgroups) must still report its main process's CPU and memory."""
    source = ListingSource()
    uid = _pod_with(tree, source, "charged", SLEEPY, 4 * MiB)
    real = source.containers[0]
    empty_cg = tree.make(f"pod{uid}/empty")
    from dataclasses import replace

    source.containers.append(replace(real, id="c-empty", name="empty", cgroup_path=empty_cg))
    source.containers.append(replace(real, id="c-nocg", name="nocg", cgroup_path=""))
    snap = await StatsCollector(
        StatsConfig(node_name="n1", root_dir=str(tmp_path)), source
    ).collect_once()
    by_name = {c.name: c for c in snap.pods[0].containers}
    for name in ("empty", "nocg"):
        c = by_name[name]
        assert c.cpu is not None and c.cpu.usage_core_ns > 0, name
        assert c.memory is not None and c.memory.working_set_bytes > 4 * MiB, name


async def test_scraped_bodies_are_rendered_right_after_each_pass(tmp_path: object) -> None:
    collector = StatsCollector(StatsConfig(node_name="n1", root_dir=str(tmp_path)), ListingSource())
    service = StatsService(collector, AgentMetrics())
    await collector.collect_once()
    first = service.cadvisor_metrics()  # rendered on request; now "wanted"
    assert service.prerender_cpu_s == 0
    await collector.collect_once()
    assert service.prerender_cpu_s > 0
    cached = service._cache["cadvisor"]
    assert cached[0] is collector.latest()  # ready before anyone asked
    assert service.cadvisor_metrics() is cached[1]
    assert service.cadvisor_metrics() != first  # a new pass, new figures (time moved)
    assert "summary" not in service._cache  # never scraped: never rendered

"""Stats over the real ProcessRuntime: its cgroup paths, sandbox netns, overlay upper dirs and
log directories are what the collector reads."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Unpack

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pykubelet.runtime import ContainerConfig, ContainerState, LinuxResources
from pykubelet.runtime.process import ProcessRuntime
from pykubelet.stats import (
    AgentMetrics,
    StatsCollector,
    StatsConfig,
    StatsService,
    upper_dirs_under,
)
from tests.prereq import require_root
from tests.runtime.conftest import (  # noqa: F401 - fixtures used by name
    BUSYBOX_REF,
    ContainerOptions,
    busybox_tar,
    make_runtime,
    sandbox_config,
    wait_for,
)

pytestmark = pytest.mark.root


def _cfg(script: str, name: str, **kw: Unpack[ContainerOptions]) -> ContainerConfig:
    return ContainerConfig(
        name=name, image=BUSYBOX_REF, command=("sh", "-c", script), log_path=f"{name}/0.log", **kw
    )


def _has(path: Path, needle: bytes) -> bool:
    return path.exists() and needle in path.read_bytes()


def _is_dir(path: Path) -> bool:
    return os.path.isdir(path)


async def test_stats_of_process_runtime_pods(
    make_runtime: Callable[..., ProcessRuntime],  # noqa: F811
    busybox_tar: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    require_root()
    root = tmp_path / "root"
    rt = make_runtime(root)
    await rt.import_image(busybox_tar)
    sc = sandbox_config("web", log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    busy = await rt.create_container(
        sid,
        _cfg(
            "dd if=/dev/zero of=/tmp/blob bs=1024 count=256 2>/dev/null; echo ready; "
            "while true; do :; done",
            "busy",
            resources=LinuxResources(cpu_quota_us=30_000, cpu_period_us=100_000),
        ),
        sc,
    )
    idle = await rt.create_container(sid, _cfg("echo ready; exec sleep 600", "idle"), sc)
    for cid in (busy, idle):
        await rt.start_container(cid)

    async def logged(cid: str) -> bool:
        return _has(Path((await rt.container_status(cid)).log_path), b"ready")

    for cid in (busy, idle):
        await wait_for(functools.partial(logged, cid), 15, f"{cid} ready")

    cfg = StatsConfig(
        node_name="n1",
        root_dir=str(root),
        pods_cgroup=rt._cgroup_root,
        rootfs_dir=upper_dirs_under(str(root / "runtime" / "containers")),
    )
    collector = StatsCollector(cfg, rt)
    await collector.collect_once()
    t0 = time.monotonic()
    await wait_for(lambda: time.monotonic() - t0 >= 1.0, 5)
    snap = await collector.collect_once()

    (pod,) = snap.pods
    assert (pod.name, pod.namespace, pod.uid, pod.sandbox_id) == ("web", "default", sc.uid, sid)
    assert pod.cgroup_path  # the runtime's pod cgroup
    by_name = {c.name: c for c in pod.containers}
    assert set(by_name) == {"busy", "idle"}
    for c in by_name.values():
        assert c.cgroup_path.endswith(c.id)
        assert c.cpu is not None and c.cpu.usage_core_ns > 0
        assert c.memory is not None and c.memory.working_set_bytes > 0
        assert c.logs is not None and (c.logs.used_bytes or 0) > 0
    busy_cpu = by_name["busy"].cpu
    assert busy_cpu is not None
    rate = busy_cpu.usage_nano_cores
    assert rate is not None and 0.02e9 < rate <= 0.35e9  # quota: 0.3 of a core
    rootfs = by_name["busy"].rootfs
    assert rootfs is not None and (rootfs.used_bytes or 0) >= 256 * 1024
    assert pod.network is not None  # read through the sandbox's network namespace
    assert pod.memory is not None and pod.cpu is not None
    assert [s.name for s in snap.node.system_containers] == ["kubelet", "pods"]

    service = StatsService(collector, AgentMetrics())
    text = service.resource_metrics().decode()
    seen = {
        s.labels["container"]
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if f.name == "container_memory_working_set_bytes" and s.timestamp is not None
    }
    assert seen == {"busy", "idle"}

    await rt.stop_container(idle, 1)
    assert (await rt.container_status(idle)).state == ContainerState.EXITED
    snap = await collector.collect_once()
    assert [c.name for c in snap.pods[0].containers] == ["busy"]
    assert _is_dir(root / "runtime" / "containers" / busy / "upper")

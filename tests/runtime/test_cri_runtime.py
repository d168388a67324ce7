"""What only the CRI runtime does, on a real containerd: log rotation by the kubelet (gzip,
rename + ReopenContainerLog), CRI stats, runtime health, and clear errors for a bad endpoint."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from devtools.containerd import Containerd
from pykubelet.core.clock import FakeClock
from pykubelet.core.errors import InvalidInput
from pykubelet.runtime import (
    ContainerConfig,
    ContainerState,
    ExecTimeout,
    RuntimeUnavailable,
    SandboxConfig,
)
from pykubelet.runtime.cri import CriRuntime
from tests.runtime.conftest import BUSYBOX_REF, sandbox_config, wait_for, wait_state

pytestmark = pytest.mark.root


def _sandbox(containerd: Containerd, tmp_path: Path) -> SandboxConfig:
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    return replace(sc, cgroup_parent=f"{containerd.cgroup_parent}/pod{sc.uid}")


async def test_logs_rotate_at_the_size_gzipped_and_containerd_reopens(
    make_cri_runtime: Callable[..., CriRuntime], containerd: Containerd, tmp_path: Path
) -> None:
    clock = FakeClock()  # 2023-11-14 22:30:00 UTC: each pass gets its own second
    rt = make_cri_runtime(
        clock=clock,
        container_log_max_size_bytes=2048,
        container_log_max_files=3,
        log_rotate_interval_s=3600,  # the passes are the test's own
    )
    await rt.start()
    sc = _sandbox(containerd, tmp_path)
    sid = await rt.run_pod_sandbox(sc)
    line = "x" * 100
    cfg = ContainerConfig(
        name="chatty",
        image=BUSYBOX_REF,
        command=("sh", "-c", f"i=0; while true; do echo $i {line}; i=$((i+1)); sleep 0.01; done"),
        log_path="chatty/0.log",
    )
    cid = await rt.create_container(sid, cfg, sc)
    await rt.start_container(cid)
    log = tmp_path / "logs" / "chatty" / "0.log"
    stamps = ["20231114-223000", "20231114-223001", "20231114-223002"]
    for _ in stamps:
        await wait_for(lambda: log.exists() and log.stat().st_size >= 2048, 30, "a full log")
        assert await rt.rotate_logs() == 1
        await clock.advance(1)
    # max files 3 = the current file + the newest rotation (plain) + one older one (gzipped);
    # the first rotation was pruned
    left = sorted(p.name for p in log.parent.iterdir())
    assert left == ["0.log", f"0.log.{stamps[1]}.gz", f"0.log.{stamps[2]}"]
    older = gzip.decompress((log.parent / left[1]).read_bytes()).decode().splitlines()
    newest = (log.parent / left[2]).read_text().splitlines()
    for lines in (older, newest):
        assert lines[0].split(" ", 3)[1:3] == ["stdout", "F"] and lines[0].endswith(line)
    # nothing lost or repeated at the seams: the counter runs on from file to file
    count = [int(x.split(" ", 4)[3]) for x in (*older, *newest)]
    assert count == list(range(count[0], count[0] + len(count)))
    await wait_for(lambda: log.stat().st_size > 0, 10, "lines in the reopened log")
    assert int(log.read_text().splitlines()[0].split(" ", 4)[3]) == count[-1] + 1


async def test_stats_and_health(
    make_cri_runtime: Callable[..., CriRuntime], containerd: Containerd, tmp_path: Path
) -> None:
    rt = make_cri_runtime()
    await rt.start()
    health = await rt.health()
    assert health.ready and health.runtime_ready and health.network_ready
    sc = _sandbox(containerd, tmp_path)
    sid = await rt.run_pod_sandbox(sc)
    cfg = ContainerConfig(
        name="busy", image=BUSYBOX_REF, command=("sh", "-c", "while true; do :; done")
    )
    cid = await rt.create_container(sid, cfg, sc)
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.RUNNING)

    async def burning() -> bool:
        s = await rt.container_stats(cid)
        return s is not None and s.cpu_usage_core_ns > 10_000_000

    await wait_for(burning, 20, "CPU use in CRI ContainerStats")
    listed = {s.container_id: s for s in await rt.list_container_stats()}
    assert listed[cid].memory_working_set_bytes > 0
    status = await rt.container_status(cid)
    assert status.cgroup_path.endswith(f"/{cid}")  # where stats read cgroups on this node
    cpu_cgroups = ("/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup")  # v1 or v2
    dirs = [os.path.join(d, status.cgroup_path) for d in cpu_cgroups]
    assert any(await asyncio.gather(*(asyncio.to_thread(os.path.isdir, d) for d in dirs)))


async def test_a_socket_nobody_serves_fails_loudly(tmp_path: Path) -> None:
    rt = CriRuntime(f"unix://{tmp_path}/none.sock", request_timeout_s=2)
    with pytest.raises(RuntimeUnavailable, match=r"containerRuntimeEndpoint unix://.*none\.sock"):
        await rt.start()
    health = await rt.health()
    assert not health.ready and health.reason == "RuntimeDown"
    await rt.aclose()


def test_bad_endpoints_and_settings_name_the_field() -> None:
    with pytest.raises(InvalidInput, match="containerRuntimeEndpoint"):
        CriRuntime("tcp://127.0.0.1:1234")
    with pytest.raises(InvalidInput, match="containerLogMaxFiles"):
        CriRuntime("unix:///run/x.sock", container_log_max_files=1)


async def test_containerd_restart_keeps_containers_and_the_client_reconnects(
    make_cri_runtime: Callable[..., CriRuntime], containerd: Containerd, tmp_path: Path
) -> None:
    rt = make_cri_runtime()
    await rt.start()
    sc = _sandbox(containerd, tmp_path)
    sid = await rt.run_pod_sandbox(sc)
    cfg = ContainerConfig(name="app", image=BUSYBOX_REF, command=("sleep", "3600"))
    cid = await rt.create_container(sid, cfg, sc)
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.RUNNING)
    await asyncio.to_thread(containerd.restart)

    async def answers() -> bool:
        try:
            return (await rt.exec_sync(cid, ["echo", "back"], 5)).stdout == b"back\n"
        except RuntimeUnavailable:
            return False  # the channel reconnects with back-off

    await wait_for(answers, 60, "exec through the same client after the restart")
    assert (await rt.container_status(cid)).state is ContainerState.RUNNING
    assert (await rt.pod_sandbox_status(sid)).state.value == "SANDBOX_READY"


def _images(containerd: Containerd, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pykubelet.cli",
            "images",
            *args,
            "--container-runtime-endpoint",
            f"unix://{containerd.socket}",
        ],
        capture_output=True,
        text=True,
    )


def test_images_cli_imports_lists_and_removes_on_containerd(
    containerd: Containerd, tmp_path: Path
) -> None:
    from devtools.busybox_image import build_busybox_image

    tar = build_busybox_image(tmp_path / "other.tar", "localhost/other:1.0")
    r = _images(containerd, "import", str(tar), "--ref", "localhost/tagged:2")
    assert r.returncode == 0, r.stderr
    assert "localhost/tagged:2" in r.stdout
    assert "localhost/tagged:2" in containerd.ctr("images", "ls", "-q").stdout
    listed = _images(containerd, "list")
    assert listed.returncode == 0 and "localhost/other:1.0" in listed.stdout
    assert "localhost/other:1.0" in containerd.ctr("images", "ls", "-q").stdout  # really there
    r = _images(containerd, "rm", "localhost/other:1.0")
    assert r.returncode == 0, r.stderr
    assert "localhost/other:1.0" not in _images(containerd, "list").stdout


async def test_exec_sync_timeout(
    make_cri_runtime: Callable[..., CriRuntime], containerd: Containerd, tmp_path: Path
) -> None:
    rt = make_cri_runtime()
    await rt.start()
    sc = _sandbox(containerd, tmp_path)
    sid = await rt.run_pod_sandbox(sc)
    cid = await rt.create_container(
        sid, ContainerConfig(name="app", image=BUSYBOX_REF, command=("sleep", "3600")), sc
    )
    await rt.start_container(cid)
    with pytest.raises(ExecTimeout):
        await rt.exec_sync(cid, ["sleep", "30"], 1)
    assert (await rt.exec_sync(cid, ["true"], 5)).exit_code == 0


async def test_health_reports_containerds_network_not_ready(
    make_cri_runtime: Callable[..., CriRuntime], containerd: Containerd
) -> None:
    rt = make_cri_runtime()
    await rt.start()
    assert (await rt.health()).ready
    for conf in (containerd.workdir / "cni").glob("*.conflist"):
        conf.unlink()  # containerd watches its CNI conf dir

    async def network_down() -> bool:
        h = await rt.health()
        return h.runtime_ready and not h.network_ready

    await wait_for(network_down, 20, "NetworkReady=false")
    health = await rt.health()
    assert health.reason == "NetworkPluginNotReady" and "cni" in health.message

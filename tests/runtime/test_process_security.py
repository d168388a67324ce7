"""SecurityConfig enforcement and the PodNetwork hook."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from pykubelet.runtime import (
    Capabilities,
    ContainerConfig,
    ContainerState,
    CreateContainerError,
    SandboxConfig,
    SecurityConfig,
)
from pykubelet.runtime.process import ProcessRuntime
from tests.prereq import require_binary, require_root
from tests.runtime.conftest import BUSYBOX_REF, read_log, sandbox_config, wait_state

pytestmark = pytest.mark.root


@pytest.fixture
async def rt(make_runtime: Callable[..., ProcessRuntime], busybox_tar: Path) -> ProcessRuntime:
    require_root()
    runtime = make_runtime()
    await runtime.import_image(busybox_tar)
    return runtime


async def _output(rt: ProcessRuntime, tmp_path: Path, script: str, sec: SecurityConfig) -> str:
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    cfg = ContainerConfig(
        name="c", image=BUSYBOX_REF, command=("sh", "-c", script), log_path="c/0.log", security=sec
    )
    cid = await rt.create_container(sid, cfg, sc)
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.EXITED)
    return read_log((await rt.container_status(cid)).log_path)


def _status_field(log: str, name: str) -> str:
    for line in log.splitlines():
        msg = line.split(" ", 3)[3]
        if msg.startswith(name + ":"):
            return msg.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in {log!r}")


async def test_user_groups_and_no_new_privs(rt: ProcessRuntime, tmp_path: Path) -> None:
    sec = SecurityConfig(
        run_as_user=1234, run_as_group=2345, supplemental_groups=(3456,), no_new_privs=True
    )
    log = await _output(rt, tmp_path, "id; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status", sec)
    assert "uid=1234 gid=2345 groups=3456" in log
    assert _status_field(log, "CapEff") == "0000000000000000"
    assert _status_field(log, "NoNewPrivs") == "1"


async def test_default_and_dropped_capabilities(rt: ProcessRuntime, tmp_path: Path) -> None:
    default = await _output(rt, tmp_path / "a", "grep CapEff /proc/self/status", SecurityConfig())
    # containerd's default set: 14 capabilities, no SYS_ADMIN (bit 21)
    eff = int(_status_field(default, "CapEff"), 16)
    assert bin(eff).count("1") == 14 and not eff & (1 << 21)
    dropped = await _output(
        rt,
        tmp_path / "b",
        "grep -E '^Cap(Eff|Bnd)' /proc/self/status",
        SecurityConfig(capabilities=Capabilities(drop=("ALL",), add=("NET_BIND_SERVICE",))),
    )
    assert int(_status_field(dropped, "CapEff"), 16) == 1 << 10
    assert int(_status_field(dropped, "CapBnd"), 16) == 1 << 10


async def test_unknown_capability_is_refused(rt: ProcessRuntime, tmp_path: Path) -> None:
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    bad = ContainerConfig(
        name="c",
        image=BUSYBOX_REF,
        command=("true",),
        security=SecurityConfig(capabilities=Capabilities(add=("NOT_A_CAP",))),
    )
    with pytest.raises(CreateContainerError, match="NOT_A_CAP"):
        await rt.create_container(sid, bad, sc)


class LoopbackAliasNetwork:
    """A real (if tiny) PodNetwork: gives each pod an address on its own loopback."""

    def __init__(self) -> None:
        self.released: list[str] = []

    async def setup(self, sandbox_id: str, netns_path: str, config: SandboxConfig) -> list[str]:
        proc = await asyncio.create_subprocess_exec(
            "nsenter", f"--net={netns_path}", "ip", "addr", "add", "10.250.0.7/32", "dev", "lo"
        )
        assert await proc.wait() == 0
        return ["10.250.0.7"]

    async def teardown(self, sandbox_id: str, netns_path: str) -> None:
        self.released.append(sandbox_id)


async def test_network_hook_sets_the_pod_ip(
    make_runtime: Callable[..., ProcessRuntime], busybox_tar: Path, tmp_path: Path
) -> None:
    require_root()
    require_binary("ip")
    net = LoopbackAliasNetwork()
    rt = make_runtime(network=net)
    await rt.import_image(busybox_tar)
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    assert (await rt.pod_sandbox_status(sid)).ip == "10.250.0.7"
    cid = await rt.create_container(
        sid,
        ContainerConfig(
            name="c", image=BUSYBOX_REF, command=("ip", "-4", "addr"), log_path="c/0.log"
        ),
        sc,
    )
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.EXITED)
    assert "10.250.0.7" in read_log((await rt.container_status(cid)).log_path)
    await rt.stop_pod_sandbox(sid)
    await rt.stop_pod_sandbox(sid)
    assert net.released == [sid]  # released once, however often the sandbox is stopped

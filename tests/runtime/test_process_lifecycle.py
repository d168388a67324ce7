"""ProcessRuntime behaviour beyond the contract: limits, OOM, graceful stop, adoption."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Unpack

import pytest

from pykubelet.runtime import (
    ContainerConfig,
    ContainerNotRunning,
    ContainerState,
    LinuxResources,
    NamespaceMode,
    SandboxState,
    StreamIO,
)
from pykubelet.runtime.process import ProcessRuntime
from tests.prereq import require_root
from tests.runtime.conftest import (
    BUSYBOX_REF,
    ContainerOptions,
    read_log,
    sandbox_config,
    wait_for,
    wait_state,
)

pytestmark = pytest.mark.root


@pytest.fixture
async def rt(make_runtime: Callable[..., ProcessRuntime], busybox_tar: Path) -> ProcessRuntime:
    require_root()
    runtime = make_runtime()
    await runtime.import_image(busybox_tar)
    return runtime


def _cfg(script: str, name: str = "c", **kw: Unpack[ContainerOptions]) -> ContainerConfig:
    return ContainerConfig(
        name=name, image=BUSYBOX_REF, command=("sh", "-c", script), log_path=f"{name}/0.log", **kw
    )


async def test_oom_kill_is_reported_as_oomkilled(rt: ProcessRuntime, tmp_path: Path) -> None:
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    limit = 16 * 1024 * 1024
    # grow a shell variable until the 16 MiB limit is hit
    script = 'x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while true; do x="$x$x"; done'
    cid = await rt.create_container(
        sid, _cfg(script, resources=LinuxResources(memory_limit_bytes=limit)), sc
    )
    status = await rt.container_status(cid)
    mem = rt.cgroups.v1_dir("memory", status.cgroup_path)
    if mem is not None:
        assert int((mem / "memory.limit_in_bytes").read_text()) == limit
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.EXITED, 30)
    status = await rt.container_status(cid)
    assert (status.exit_code, status.reason) == (137, "OOMKilled")


async def test_cpu_and_pids_limits_are_written(rt: ProcessRuntime, tmp_path: Path) -> None:
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    res = LinuxResources(cpu_quota_us=50_000, cpu_period_us=100_000, cpu_shares=512, pids_limit=64)
    cid = await rt.create_container(sid, _cfg("sleep 30", resources=res), sc)
    rel = (await rt.container_status(cid)).cgroup_path
    assert rel == f"{sc.cgroup_parent or rt._cgroup_root + '/pod' + sc.uid}/{cid}"
    cpu, pids = rt.cgroups.v1_dir("cpu", rel), rt.cgroups.v1_dir("pids", rel)
    if cpu is not None and pids is not None:
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (cpu / "cpu.shares").read_text().strip() == "512"
        assert (pids / "pids.max").read_text().strip() == "64"
    await rt.start_container(cid)
    pid = (await rt.container_status(cid)).pid
    assert pid in rt.cgroups.pids(rel)


async def test_graceful_stop_sigterm_then_sigkill(rt: ProcessRuntime, tmp_path: Path) -> None:
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    polite = await rt.create_container(
        sid, _cfg("trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done", "polite"), sc
    )
    stubborn = await rt.create_container(
        sid, _cfg("trap '' TERM; echo ready; while true; do sleep 0.1; done", "stubborn"), sc
    )
    await rt.start_container(polite)
    await rt.start_container(stubborn)
    for name in ("polite", "stubborn"):  # the traps are set
        await wait_for(functools.partial(_logged, tmp_path / f"logs/{name}/0.log", b"ready"), 5)
    await rt.stop_container(polite, 10)
    p = await rt.container_status(polite)
    assert (p.state, p.exit_code) == (ContainerState.EXITED, 7)
    await rt.stop_container(stubborn, 0.5)
    s = await rt.container_status(stubborn)
    assert (s.state, s.exit_code) == (ContainerState.EXITED, 137)
    assert s.finished_at - s.started_at >= 0.5


def _logged(path: Path, needle: bytes) -> bool:
    return path.exists() and needle in path.read_bytes()


async def test_a_container_whose_shim_died_is_unknown_and_still_stoppable(
    rt: ProcessRuntime, tmp_path: Path
) -> None:
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    cid = await rt.create_container(sid, _cfg("sleep 30"), sc)
    await rt.start_container(cid)
    pid = (await rt.container_status(cid)).pid
    shim_ident, pid_ident = rt._identities(rt.layout.container_dir(cid))
    assert shim_ident is not None and pid_ident is not None and pid_ident[0] == pid
    shim = shim_ident[0]
    os.kill(shim, signal.SIGKILL)
    await wait_state(rt, cid, ContainerState.UNKNOWN)
    await rt.stop_container(cid, 0)
    st = await rt.container_status(cid)
    assert (st.state, st.exit_code) == (ContainerState.EXITED, 255)
    assert _gone(pid)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z"
    except FileNotFoundError:
        return True


async def test_sandbox_namespaces(rt: ProcessRuntime, tmp_path: Path) -> None:
    sc = sandbox_config("nsprobe", log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    st = await rt.pod_sandbox_status(sid)
    assert st.netns_path.startswith("/proc/") and st.ip == ""
    assert os.readlink(st.netns_path) != os.readlink("/proc/self/ns/net")
    cid = await rt.create_container(sid, _cfg("hostname; echo pid=$$; cat /proc/net/dev"), sc)
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.EXITED)
    out = read_log((await rt.container_status(cid)).log_path)
    assert " F nsprobe\n" in out and " F pid=1\n" in out
    assert "lo:" in out and "eth0" not in out
    host = sandbox_config("hostnet", log_directory=str(tmp_path / "l2"), network=NamespaceMode.NODE)
    hid = await rt.run_pod_sandbox(host)
    hst = await rt.pod_sandbox_status(hid)
    assert hst.netns_path == ""
    assert hst.state == SandboxState.READY


async def test_the_holder_joins_its_pod_cgroup_before_it_reports(
    rt: ProcessRuntime, tmp_path: Path
) -> None:
    sc = sandbox_config("cgprobe", log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    holder = rt._sandbox(sid).holder_pid
    leaf = f"{rt._cgroup_root}/pod{sc.uid}/sandbox-{sid[:12]}"
    dirs = rt.cgroups.dirs(leaf)
    assert all(str(holder) in _procs(d) for d in dirs)
    # /proc/<holder>/cgroup names the leaf once per hierarchy the runtime uses
    memberships = _cgroup_lines(holder)
    assert sum(line.endswith("/" + leaf) for line in memberships) == len(dirs)


def _procs(cgroup_dir: Path) -> list[str]:
    return (cgroup_dir / "cgroup.procs").read_text().split()


def _cgroup_lines(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cgroup").read_text().splitlines()


async def test_image_containers_get_a_read_only_sysfs(rt: ProcessRuntime, tmp_path: Path) -> None:
    sc = sandbox_config("sysprobe", log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    script = "grep ' /sys ' /proc/mounts; ls /sys/class/net; echo x > /sys/kernel/x || echo ro"
    cid = await rt.create_container(sid, _cfg(script), sc)
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.EXITED)
    out = read_log((await rt.container_status(cid)).log_path)
    assert " F sysfs /sys sysfs ro," in out
    assert " F lo\n" in out and "eth0" not in out  # the pod's network namespace, not the host's
    assert " F ro\n" in out


async def test_pod_etc_files(rt: ProcessRuntime, tmp_path: Path) -> None:
    sc = sandbox_config("etcpod", log_directory=str(tmp_path / "logs"), dns_servers=("10.0.0.10",))
    sid = await rt.run_pod_sandbox(sc)
    cid = await rt.create_container(
        sid, _cfg("cat /etc/hostname /etc/resolv.conf; grep -c localhost /etc/hosts"), sc
    )
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.EXITED)
    out = read_log((await rt.container_status(cid)).log_path)
    assert " F etcpod\n" in out and " F nameserver 10.0.0.10\n" in out and " F 2\n" in out


async def test_shared_process_namespace(rt: ProcessRuntime, tmp_path: Path) -> None:
    sc = sandbox_config(log_directory=str(tmp_path / "logs"), pid=NamespaceMode.POD)
    sid = await rt.run_pod_sandbox(sc)
    a = await rt.create_container(sid, _cfg("sleep 30", "a"), sc)
    await rt.start_container(a)
    b = await rt.create_container(sid, _cfg("ps", "b"), sc)
    await rt.start_container(b)
    await wait_state(rt, b, ContainerState.EXITED)
    out = read_log((await rt.container_status(b)).log_path)
    assert "sleep 30" in out  # b sees a's process


AGENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from pykubelet.runtime import ContainerConfig, SandboxConfig
    from pykubelet.runtime.process import ProcessRuntime

    async def main():
        root, cg, image, logs = sys.argv[1:5]
        rt = ProcessRuntime(Path(root), cgroup_root=cg)
        sc = SandboxConfig(name="adopt", namespace="default", uid="adopt-uid", log_directory=logs)
        sid = await rt.run_pod_sandbox(sc)
        script = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done"
        cfg = ContainerConfig(name="c", image=image, command=("sh", "-c", script),
                              log_path="c/0.log")
        cid = await rt.create_container(sid, cfg, sc)
        await rt.start_container(cid)
        echo = ContainerConfig(name="echo", image=image, command=("cat",), stdin=True,
                               log_path="echo/0.log")
        eid = await rt.create_container(sid, echo, sc)
        await rt.start_container(eid)
        done = ContainerConfig(name="done", image=image, command=("sh", "-c", "exit 5"),
                               log_path="done/0.log")
        did = await rt.create_container(sid, done, sc)
        await rt.start_container(did)
        while (await rt.container_status(did)).state.value != "CONTAINER_EXITED":
            await asyncio.sleep(0.01)
        print(json.dumps({"sid": sid, "cid": cid, "eid": eid, "did": did}), flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_adoption_after_agent_sigkill(
    rt: ProcessRuntime, make_runtime: Callable[..., ProcessRuntime], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    agent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        AGENT,
        str(rt.layout.root),
        rt._cgroup_root,
        BUSYBOX_REF,
        str(logs),
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert agent.stdout is not None
        async with asyncio.timeout(30):
            ids = json.loads(await agent.stdout.readline())
    finally:
        os.killpg(agent.pid, signal.SIGKILL)  # the agent and its whole process group
        await agent.wait()
    log = logs / "c" / "0.log"
    size_at_kill = log.stat().st_size if log.exists() else 0

    fresh = make_runtime(rt.layout.root)
    done = await fresh.container_status(ids["did"])  # exit facts survive the agent
    assert (done.state, done.exit_code, done.reason) == (ContainerState.EXITED, 5, "Error")
    st = await fresh.container_status(ids["cid"])
    assert st.state == ContainerState.RUNNING and st.pid > 0
    await wait_for(lambda: _grown(log, size_at_kill), 10)  # logs keep flowing
    # no duplicates: the same pod attempt maps to the adopted sandbox, and a second start fails
    sc_again = [s for s in await fresh.list_pod_sandboxes() if s.uid == "adopt-uid"]
    assert [s.id for s in sc_again] == [ids["sid"]]
    with pytest.raises(ContainerNotRunning):
        await fresh.start_container(ids["cid"])
    shims = _processes_with(ids["cid"].encode())  # one shim per container, still
    assert len(shims) == 1, shims
    # attach reaches the adopted container's own stdin/stdout through its shim
    got = bytearray()

    async def sink(b: bytes) -> None:
        got.extend(b)

    async def stdin() -> AsyncIterator[bytes]:
        yield b"still-here\n"

    attach = asyncio.create_task(
        fresh.attach(ids["eid"], StreamIO(stdin=stdin(), stdout=sink, stderr=sink))
    )
    await wait_for(lambda: b"still-here\n" in got, 10, "echo through attach")
    attach.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await attach
    await fresh.stop_container(ids["cid"], 1)
    assert (await fresh.container_status(ids["cid"])).state == ContainerState.EXITED


def _grown(path: Path, size: int) -> bool:
    return path.exists() and path.stat().st_size > size + 100


def _processes_with(needle: bytes) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
                state = (d / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            except OSError:
                continue
            if needle in cmd and b"pkshim" in cmd and state != b"Z":
                found.append(int(d.name))
    return found

"""The runtime's in-memory index and status cache stay true to the disk and the processes:
records made or removed by another runtime on the same root, exits written by the shim, and
processes that die without a word (pidfd liveness)."""

from __future__ import annotations

import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pykubelet.runtime import ContainerConfig, ContainerState, SandboxState
from pykubelet.runtime.process import ProcessRuntime, procs
from tests.prereq import require_root
from tests.runtime.conftest import BUSYBOX_REF, sandbox_config, wait_for

pytestmark = pytest.mark.root


def _cfg(script: str, name: str = "c") -> ContainerConfig:
    return ContainerConfig(
        name=name, image=BUSYBOX_REF, command=("sh", "-c", script), log_path=f"{name}/0.log"
    )


async def test_two_runtimes_on_one_root_see_each_others_changes(
    make_runtime: Callable[..., ProcessRuntime], busybox_tar: Path, tmp_path: Path
) -> None:
    require_root()
    a = make_runtime()
    await a.import_image(busybox_tar)
    b = make_runtime(a.layout.root)
    assert await b.list_containers() == [] and await b.list_pod_sandboxes() == []

    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await a.run_pod_sandbox(sc)
    cid = await a.create_container(sid, _cfg("sleep 30"), sc)
    assert [c.id for c in await b.list_containers()] == [cid]  # created behind b's back
    assert [(s.id, s.state) for s in await b.list_pod_sandboxes()] == [(sid, SandboxState.READY)]
    assert (await b.list_containers())[0].state == ContainerState.CREATED
    await a.start_container(cid)
    assert (await b.list_containers())[0].state == ContainerState.RUNNING

    await a.stop_container(cid, 0)  # the shim records the exit: both caches notice
    for rt in (a, b):
        (st,) = await rt.list_containers(sid)
        assert st.state == ContainerState.EXITED and st.exit_code == 137

    await a.stop_pod_sandbox(sid)
    assert [s.state for s in await b.list_pod_sandboxes()] == [SandboxState.NOTREADY]
    await b.remove_pod_sandbox(sid)  # removed by b: a forgets it too
    assert await a.list_containers() == [] and await a.list_pod_sandboxes() == []
    with pytest.raises(Exception, match="not found"):
        await a.container_status(cid)


async def test_a_container_that_exits_by_itself_is_listed_as_exited(
    make_runtime: Callable[..., ProcessRuntime], busybox_tar: Path, tmp_path: Path
) -> None:
    require_root()
    rt = make_runtime()
    await rt.import_image(busybox_tar)
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    cid = await rt.create_container(sid, _cfg("sleep 0.3; exit 4"), sc)
    await rt.start_container(cid)
    assert (await rt.list_containers())[0].state == ContainerState.RUNNING  # now cached

    async def exited() -> bool:
        (st,) = await rt.list_containers()
        return st.state == ContainerState.EXITED

    await wait_for(exited, 10, "the exit")
    (st,) = await rt.list_containers()
    assert (st.exit_code, st.reason) == (4, "Error") and st.finished_at >= st.started_at


def test_liveness_follows_a_process_to_its_death() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        ident = procs.identity(proc.pid)
        assert ident is not None
        live = procs.Liveness()
        assert live.alive(ident) and live.alive(ident)
        assert not live.alive((proc.pid, ident[1] + 1))  # same pid, another process
        assert not live.alive(None)
        proc.kill()
        proc.wait(timeout=10)
        assert not live.alive(ident)
        assert not live.alive(ident)  # dead stays dead
        live.forget(ident)
        assert not live.alive(ident)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_liveness_sees_an_unreaped_zombie_as_dead() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        ident = procs.identity(proc.pid)
        live = procs.Liveness()
        assert live.alive(ident)
        proc.kill()  # not waited for: a zombie until reaped
        deadline = time.monotonic() + 10
        while live.alive(ident) and time.monotonic() < deadline:
            select.select([], [], [], 0.01)  # the exit is asynchronous: poll, bounded
        assert not live.alive(ident)
        assert Path(f"/proc/{proc.pid}").exists()  # still there, unreaped
    finally:
        proc.kill()
        proc.wait(timeout=10)

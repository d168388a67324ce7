"""The runtime contract: every implementation of the runtime boundary must pass these.

Run against the process runtime (C and Python helpers), containerd over CRI (a private daemon
per test) and ``FakeRuntime``, so the fake the pod-layer tests use cannot drift from the real
runtimes. The fake runs no commands: ``Contract.will_exit`` scripts what the command would do.
Add an implementation by adding a param to ``contract_rt``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Unpack

import pytest

from pykubelet.core.clock import SystemClock
from pykubelet.runtime import (
    ContainerConfig,
    ContainerNotFound,
    ContainerState,
    ImageNotFound,
    SandboxConfig,
    SandboxNotFound,
    SandboxState,
)
from pykubelet.runtime.cri import CriRuntime
from pykubelet.runtime.errors import RuntimeFailure
from pykubelet.runtime.fake import FakeRuntime
from pykubelet.runtime.process import ProcessRuntime
from tests.runtime.conftest import (
    BUSYBOX_REF,
    ContainerOptions,
    remove_all_pods,
    sandbox_config,
    wait_state,
)


@dataclass
class Contract:
    rt: Any  # every protocol of pykubelet.runtime.protocol
    image: str
    kind: str  # "process", "containerd" or "fake"
    cgroup_parent: str = ""  # containerd: pods under the daemon's dedicated cgroup

    def sandbox(self, name: str = "pod", **kw: Any) -> SandboxConfig:
        sc = sandbox_config(name, **kw)
        if self.cgroup_parent:
            sc = replace(sc, cgroup_parent=f"{self.cgroup_parent}/pod{sc.uid}")
        return sc

    def will_exit(self, name: str, code: int) -> None:
        """The fake has no processes: script the exit a real ``sh -c`` command makes."""
        if isinstance(self.rt, FakeRuntime):
            self.rt.script(name, exit_code=code)

    def never_imported(self, ref: str) -> None:
        """The fake's store holds every image unless told otherwise."""
        if isinstance(self.rt, FakeRuntime):
            self.rt.hide_image(ref)


@pytest.fixture(params=["process", "process-python-helper", "containerd", "fake"])
async def contract_rt(
    request: pytest.FixtureRequest,
    make_runtime: Callable[..., ProcessRuntime],
    tmp_path: Path,
) -> AsyncIterator[Contract]:
    if request.param == "fake":
        yield Contract(FakeRuntime(SystemClock()), BUSYBOX_REF, "fake")
        return
    if request.param == "containerd":
        daemon = request.getfixturevalue("containerd")
        rt = CriRuntime(f"unix://{daemon.socket}")
        await rt.start()
        try:
            yield Contract(rt, BUSYBOX_REF, "containerd", daemon.cgroup_parent)
        finally:
            await remove_all_pods(rt)
        return
    # the process runtime with its C helper, and with the Python fallback used without cc
    prt = make_runtime(helper="python" if request.param == "process-python-helper" else "native")
    image = "host"
    if os.geteuid() == 0:
        tar = request.getfixturevalue("busybox_tar")
        image = (await prt.import_image(tar)).repo_tags[0]
    yield Contract(prt, image, "process")


def _cfg(
    image: str, script: str, name: str = "c", **kw: Unpack[ContainerOptions]
) -> ContainerConfig:
    return ContainerConfig(
        name=name, image=image, command=("sh", "-c", script), log_path=f"{name}/0.log", **kw
    )


async def test_lifecycle_and_status_fields(contract_rt: Contract, tmp_path: Path) -> None:
    rt, image = contract_rt.rt, contract_rt.image
    sc = contract_rt.sandbox(log_directory=str(tmp_path / "logs"), labels={"app": "x"})
    sid = await rt.run_pod_sandbox(sc)
    st = await rt.pod_sandbox_status(sid)
    assert (st.state, st.name, st.uid, dict(st.labels)) == (
        SandboxState.READY,
        sc.name,
        sc.uid,
        {"app": "x"},
    )
    cid = await rt.create_container(sid, _cfg(image, "sleep 30", labels={"k": "v"}), sc)
    created = await rt.container_status(cid)
    assert created.state == ContainerState.CREATED
    assert (created.name, created.sandbox_id, dict(created.labels)) == ("c", sid, {"k": "v"})
    await rt.start_container(cid)
    running = await rt.container_status(cid)
    assert running.state == ContainerState.RUNNING
    assert running.started_at > 0
    if contract_rt.kind == "process":
        assert running.pid > 0  # an optional fact: CRI runtimes do not say
    assert running.log_path == str(tmp_path / "logs" / "c" / "0.log")
    await rt.stop_container(cid, 1)  # a PID 1 shell ignores SIGTERM: SIGKILL after 1 s
    exited = await rt.container_status(cid)
    assert exited.state == ContainerState.EXITED
    assert exited.finished_at >= exited.started_at
    await rt.stop_pod_sandbox(sid)
    assert (await rt.pod_sandbox_status(sid)).state == SandboxState.NOTREADY
    await rt.remove_pod_sandbox(sid)
    with pytest.raises(SandboxNotFound):
        await rt.pod_sandbox_status(sid)
    with pytest.raises(ContainerNotFound):
        await rt.container_status(cid)


async def test_stop_and_remove_are_idempotent(contract_rt: Contract, tmp_path: Path) -> None:
    rt, image = contract_rt.rt, contract_rt.image
    sc = contract_rt.sandbox(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    cid = await rt.create_container(sid, _cfg(image, "exit 0"), sc)
    contract_rt.will_exit("c", 0)
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.EXITED)
    for _ in range(2):
        await rt.stop_container(cid, 1)
    for _ in range(2):
        await rt.remove_container(cid)
    await rt.stop_container("no-such-container", 1)
    await rt.remove_container("no-such-container")
    for _ in range(2):
        await rt.stop_pod_sandbox(sid)
        await rt.remove_pod_sandbox(sid)
    await rt.stop_pod_sandbox("no-such-sandbox")
    await rt.remove_pod_sandbox("no-such-sandbox")


async def test_exit_codes_and_reasons(contract_rt: Contract, tmp_path: Path) -> None:
    rt, image = contract_rt.rt, contract_rt.image
    sc = contract_rt.sandbox(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    ok = await rt.create_container(sid, _cfg(image, "exit 0", name="ok"), sc)
    bad = await rt.create_container(sid, _cfg(image, "exit 3", name="bad"), sc)
    killed = await rt.create_container(sid, _cfg(image, "sleep 30", name="killed"), sc)
    contract_rt.will_exit("ok", 0)
    contract_rt.will_exit("bad", 3)
    for c in (ok, bad, killed):
        await rt.start_container(c)
    await wait_state(rt, killed, ContainerState.RUNNING)
    await rt.stop_container(killed, 0)  # grace 0: SIGKILL at once, as CRI says
    for c in (ok, bad, killed):
        await wait_state(rt, c, ContainerState.EXITED)
    got = {c: await rt.container_status(c) for c in (ok, bad, killed)}
    assert (got[ok].exit_code, got[ok].reason) == (0, "Completed")
    assert (got[bad].exit_code, got[bad].reason) == (3, "Error")
    assert (got[killed].exit_code, got[killed].reason) == (137, "Error")


async def test_list_filters(contract_rt: Contract, tmp_path: Path) -> None:
    rt, image = contract_rt.rt, contract_rt.image
    sc1 = contract_rt.sandbox("one", log_directory=str(tmp_path / "l1"))
    sc2 = contract_rt.sandbox("two", log_directory=str(tmp_path / "l2"))
    s1, s2 = await rt.run_pod_sandbox(sc1), await rt.run_pod_sandbox(sc2)
    c1 = await rt.create_container(s1, _cfg(image, "true"), sc1)
    c2 = await rt.create_container(s2, _cfg(image, "true"), sc2)
    assert {s.id for s in await rt.list_pod_sandboxes()} >= {s1, s2}
    assert [c.id for c in await rt.list_containers(s1)] == [c1]
    assert [c.id for c in await rt.list_containers(s2)] == [c2]
    assert {c.id for c in await rt.list_containers()} >= {c1, c2}
    # a listed sandbox is as current as its status: a stop shows in the next list
    await rt.stop_pod_sandbox(s1)
    states = {s.id: s.state for s in await rt.list_pod_sandboxes()}
    assert (states[s1], states[s2]) == (SandboxState.NOTREADY, SandboxState.READY)


async def test_same_pod_attempt_twice(contract_rt: Contract) -> None:
    """The process runtime hands back the same sandbox; containerd refuses (the name is
    reserved, node-and-cri.md §9.3). The pod worker bumps the attempt, so both work for it."""
    rt = contract_rt.rt
    sc = contract_rt.sandbox()
    first = await rt.run_pod_sandbox(sc)
    if contract_rt.kind == "containerd":
        with pytest.raises(RuntimeFailure, match="reserve"):
            await rt.run_pod_sandbox(sc)
    elif contract_rt.kind == "process":
        assert await rt.run_pod_sandbox(sc) == first


async def test_unknown_ids_and_images(contract_rt: Contract, tmp_path: Path) -> None:
    rt, image = contract_rt.rt, contract_rt.image
    with pytest.raises(ContainerNotFound):
        await rt.container_status("nope")
    with pytest.raises(SandboxNotFound):
        await rt.pod_sandbox_status("nope")
    sc = contract_rt.sandbox(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    contract_rt.never_imported("localhost/not-there:1")
    with pytest.raises(ImageNotFound) as missing:
        await rt.create_container(sid, _cfg("localhost/not-there:1", "true"), sc)
    if contract_rt.kind == "process":
        assert "pykubelet images import" in str(missing.value)
    assert await rt.image_status("localhost/not-there:1") is None
    assert await rt.image_status(image) is not None
    with pytest.raises(SandboxNotFound):
        await rt.create_container("nope", _cfg(image, "true"), sc)

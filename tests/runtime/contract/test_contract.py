"""The runtime contract: every implementation of ``Runtime`` must pass these.

Add an implementation by adding a param to ``contract_rt`` that yields (runtime, image ref).
Commands use ``sh``, present in the busybox image and on the host.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pykubelet.runtime import (
    ContainerConfig,
    ContainerNotFound,
    ContainerState,
    ImageNotFound,
    Runtime,
    SandboxNotFound,
    SandboxState,
)
from pykubelet.runtime.process import ProcessRuntime
from tests.runtime.conftest import sandbox_config, wait_state

Contract = tuple[Runtime, str]


@pytest.fixture(params=["process", "process-python-helper"])
async def contract_rt(
    request: pytest.FixtureRequest,
    make_runtime: Callable[..., ProcessRuntime],
    tmp_path: Path,
) -> AsyncIterator[Contract]:
    # the process runtime with its C helper, and with the Python fallback used without cc
    rt = make_runtime(helper="python" if request.param == "process-python-helper" else "native")
    image = "host"
    if os.geteuid() == 0:
        tar = request.getfixturevalue("busybox_tar")
        image = (await rt.import_image(tar)).repo_tags[0]
    yield rt, image


def _cfg(image: str, script: str, name: str = "c", **kw: object) -> ContainerConfig:
    return ContainerConfig(
        name=name, image=image, command=("sh", "-c", script), log_path=f"{name}/0.log", **kw
    )  # type: ignore[arg-type]


async def test_lifecycle_and_status_fields(contract_rt: Contract, tmp_path: Path) -> None:
    rt, image = contract_rt
    sc = sandbox_config(log_directory=str(tmp_path / "logs"), labels={"app": "x"})
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
    assert running.pid > 0 and running.started_at > 0
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
    rt, image = contract_rt
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    cid = await rt.create_container(sid, _cfg(image, "exit 0"), sc)
    await rt.start_container(cid)
    await wait_state(rt, cid, ContainerState.EXITED)  # type: ignore[arg-type]
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
    rt, image = contract_rt
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    ok = await rt.create_container(sid, _cfg(image, "exit 0", name="ok"), sc)
    bad = await rt.create_container(sid, _cfg(image, "exit 3", name="bad"), sc)
    killed = await rt.create_container(sid, _cfg(image, "sleep 30", name="killed"), sc)
    for c in (ok, bad, killed):
        await rt.start_container(c)
    # a PID 1 cannot SIGKILL itself: the crash comes from outside, as an OOM kill would
    os.kill((await rt.container_status(killed)).pid, 9)
    for c in (ok, bad, killed):
        await wait_state(rt, c, ContainerState.EXITED)  # type: ignore[arg-type]
    got = {c: await rt.container_status(c) for c in (ok, bad, killed)}
    assert (got[ok].exit_code, got[ok].reason) == (0, "Completed")
    assert (got[bad].exit_code, got[bad].reason) == (3, "Error")
    assert (got[killed].exit_code, got[killed].reason) == (137, "Error")


async def test_list_filters(contract_rt: Contract, tmp_path: Path) -> None:
    rt, image = contract_rt
    sc1 = sandbox_config("one", log_directory=str(tmp_path / "l1"))
    sc2 = sandbox_config("two", log_directory=str(tmp_path / "l2"))
    s1, s2 = await rt.run_pod_sandbox(sc1), await rt.run_pod_sandbox(sc2)
    c1 = await rt.create_container(s1, _cfg(image, "true"), sc1)
    c2 = await rt.create_container(s2, _cfg(image, "true"), sc2)
    assert {s.id for s in await rt.list_pod_sandboxes()} >= {s1, s2}
    assert [c.id for c in await rt.list_containers(s1)] == [c1]
    assert [c.id for c in await rt.list_containers(s2)] == [c2]
    assert {c.id for c in await rt.list_containers()} >= {c1, c2}


async def test_same_pod_attempt_gets_the_same_sandbox(contract_rt: Contract) -> None:
    rt, _image = contract_rt
    sc = sandbox_config()
    assert await rt.run_pod_sandbox(sc) == await rt.run_pod_sandbox(sc)


async def test_unknown_ids_and_images(contract_rt: Contract, tmp_path: Path) -> None:
    rt, image = contract_rt
    with pytest.raises(ContainerNotFound):
        await rt.container_status("nope")
    with pytest.raises(SandboxNotFound):
        await rt.pod_sandbox_status("nope")
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    with pytest.raises(ImageNotFound, match="pykubelet images import"):
        await rt.create_container(sid, _cfg("localhost/not-there:1", "true"), sc)
    with pytest.raises(SandboxNotFound):
        await rt.create_container("nope", _cfg(image, "true"), sc)

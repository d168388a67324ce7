"""The composition root on FakeRuntime with a real manifest directory."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from pykubelet.agent import Agent
from pykubelet.config import load_config
from pykubelet.core.clock import SystemClock
from pykubelet.runtime.fake import FakeRuntime

POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\n"
    "spec:\n  containers: [{name: c, image: busybox}]\n"
)


def _config(tmp_path: Path) -> list[str]:
    (tmp_path / "pods").mkdir(exist_ok=True)
    return [
        "--runtime",
        "fake",
        "--root-dir",
        str(tmp_path / "root"),
        "--pod-manifest-path",
        str(tmp_path / "pods"),
        "--enable-server=false",
        "--healthz-port",
        "0",
        "--address",
        "127.0.0.1",
        "--node-name",
        "n1",
    ]


async def _until(cond: object, timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not cond():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_agent_runs_static_pods_and_stops_leaving_containers(tmp_path: Path) -> None:
    runtime = FakeRuntime(SystemClock())
    (tmp_path / "pods").mkdir()
    (tmp_path / "pods" / "a.yaml").write_text(POD % "a")
    agent = Agent(load_config(_config(tmp_path)), runtime=runtime)
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.wait_for(agent.ready.wait(), 5)
        await _until(lambda: len(runtime.running()) == 1)
        assert agent.manager is not None
        assert [p.meta.name for p in agent.manager.list_pods()] == ["a-n1"]
    finally:
        agent.stop()
        await asyncio.wait_for(task, 5)
    assert agent.done.is_set()
    assert len(runtime.running()) == 1  # left running for the next agent


async def test_next_agent_adopts_and_removes_pods_whose_manifest_went_away(tmp_path: Path) -> None:
    runtime = FakeRuntime(SystemClock())
    args = _config(tmp_path)
    (tmp_path / "pods" / "keep.yaml").write_text(POD % "keep")
    (tmp_path / "pods" / "gone.yaml").write_text(POD % "gone")
    first = Agent(load_config(args), runtime=runtime)
    task = asyncio.create_task(first.run())
    await _until(lambda: len(runtime.running()) == 2)
    first.stop()
    await task
    (tmp_path / "pods" / "gone.yaml").unlink()
    second = Agent(load_config(args), runtime=runtime)
    task = asyncio.create_task(second.run())
    try:
        await _until(lambda: len(runtime.running()) == 1, timeout_s=5)
        [left] = runtime.running()
        assert left.labels["io.kubernetes.pod.name"] == "keep-n1"
        assert [n for n, _ in runtime.started] == ["c", "c"]  # nothing started twice
    finally:
        second.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task

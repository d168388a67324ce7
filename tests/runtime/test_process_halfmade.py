"""An agent SIGKILLed in the middle of making a sandbox or a container (issue #14): the next
runtime neither adopts the half-made sandbox as ready nor leaves the half-made container's
directory, cgroup or processes behind. The agent (a subprocess) is stopped at an exact step by
a pod network whose set-up never returns, and by a record write that never returns."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pykubelet.runtime import SandboxState
from pykubelet.runtime.process import ProcessRuntime
from tests.prereq import require_root
from tests.runtime.conftest import BUSYBOX_REF

pytestmark = pytest.mark.root

AGENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from pykubelet.runtime import ContainerConfig, SandboxConfig
    from pykubelet.runtime.process import ProcessRuntime, create

    class StuckNetwork:  # the agent dies while the pod's network is being set up
        async def setup(self, sandbox_id, netns_path, config):
            print(json.dumps({"stuck": "network", "sid": sandbox_id}), flush=True)
            await asyncio.Event().wait()

        async def teardown(self, sandbox_id, netns_path):
            pass

    def stuck_record(path, value):  # ... or before a container's record is written
        if path.name == "container.json":
            print(json.dumps({"stuck": "container", "dir": str(path.parent)}), flush=True)
            import time
            time.sleep(3600)
        real_write(path, value)

    async def main():
        root, cg, image, logs = sys.argv[1:5]
        plain = ProcessRuntime(Path(root), cgroup_root=cg)
        stuck = ProcessRuntime(Path(root), cgroup_root=cg, network=StuckNetwork())
        a = SandboxConfig(name="a", namespace="default", uid="half-a", log_directory=logs)
        asyncio.ensure_future(stuck.run_pod_sandbox(a))
        b = SandboxConfig(name="b", namespace="default", uid="half-b", log_directory=logs)
        sid = await plain.run_pod_sandbox(b)
        cfg = ContainerConfig(name="c", image=image, command=("sleep", "60"), log_path="c/0.log")
        await plain.create_container(sid, cfg, b)
        await asyncio.sleep(3600)

    real_write = create.atomic_write_json
    create.atomic_write_json = stuck_record
    asyncio.run(main())
    """
)


async def test_what_a_killed_agent_left_half_made_is_not_used_and_is_cleared(
    make_runtime: Callable[..., ProcessRuntime], busybox_tar: Path, tmp_path: Path
) -> None:
    require_root()
    rt = make_runtime()
    await rt.import_image(busybox_tar)
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", AGENT, str(rt.layout.root), rt._cgroup_root, BUSYBOX_REF,
        str(tmp_path / "logs"), stdout=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        assert agent.stdout is not None
        async with asyncio.timeout(30):
            seen: dict[str, Any] = {}
            while len(seen) < 2:
                msg = json.loads(await agent.stdout.readline())
                seen[msg["stuck"]] = msg
    finally:
        os.killpg(agent.pid, signal.SIGKILL)
        await agent.wait()
    half_container = Path(seen["container"]["dir"])
    cgroup = _left_half_made(half_container)
    assert cgroup and _exists(*rt.cgroups.dirs(cgroup))

    fresh = make_runtime(rt.layout.root)
    await fresh.start()
    # the container directory without a record is gone, with its cgroup
    assert not _exists(half_container, *fresh.cgroups.dirs(cgroup))
    # the sandbox whose network was never set up is not ready: the pod layer replaces it
    by_uid = {s.uid: s for s in await fresh.list_pod_sandboxes()}
    assert by_uid["half-a"].id == seen["network"]["sid"]
    assert by_uid["half-a"].state is SandboxState.NOTREADY
    assert by_uid["half-b"].state is SandboxState.READY
    await fresh.remove_pod_sandbox(by_uid["half-a"].id)  # and it can be removed cleanly
    assert not _exists(fresh.layout.sandbox_dir(by_uid["half-a"].id))


def _left_half_made(d: Path) -> str:
    """The container directory the agent was killed in: no record, the marker's cgroup."""
    assert d.is_dir() and not (d / "container.json").exists()
    return (d / "creating").read_text()


def _exists(*paths: Path) -> bool:
    return any(p.exists() for p in paths)

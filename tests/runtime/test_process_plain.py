"""Without root the process runtime runs plain processes and says what it cannot enforce.

As root, the scenario runs in a child process switched to ``nobody`` (``tests/unprivileged.py``:
it works from a clone under a private directory such as ``/root``)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

from tests.unprivileged import as_nobody

SCENARIO = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from pykubelet.runtime import (ContainerConfig, ContainerState, CreateContainerError,
        LinuxResources, SandboxConfig, SecurityConfig)
    from pykubelet.runtime.process import ProcessRuntime

    async def main():
        root = Path(sys.argv[1])
        rt = ProcessRuntime(root)
        caps = rt.capabilities
        sc = SandboxConfig(name="p", namespace="default", uid="plain-uid",
                           log_directory=str(root / "logs"))
        sid = await rt.run_pod_sandbox(sc)
        st = await rt.pod_sandbox_status(sid)
        cfg = ContainerConfig(name="c", image="host", command=("sh", "-c", "echo $GREETING; pwd"),
                              envs=(("GREETING", "plain"),), working_dir="/tmp",
                              resources=LinuxResources(memory_limit_bytes=1 << 26),
                              log_path="c/0.log")
        cid = await rt.create_container(sid, cfg, sc)
        await rt.start_container(cid)
        for _ in range(500):
            s = await rt.container_status(cid)
            if s.state == ContainerState.EXITED:
                break
            await asyncio.sleep(0.02)
        refused = []
        image = (await rt.import_image(root / "busybox.tar")).repo_tags[0]
        for name, bad in (
            ("image", ContainerConfig(name="i", image=image, command=("true",))),
            ("user", ContainerConfig(name="u", image="host", command=("true",),
                                     security=SecurityConfig(run_as_user=0))),
        ):
            try:
                await rt.create_container(sid, bad, sc)
            except CreateContainerError as e:
                refused.append(name + ": " + str(e))
            except Exception as e:
                refused.append(name + ": " + type(e).__name__)
        print(json.dumps({
            "caps": [caps.namespaces, caps.cgroups, caps.overlay, caps.user_switch],
            "warnings": caps.warnings(),
            "netns": st.netns_path,
            "exit": [s.state.value, s.exit_code, s.cgroup_path],
            "log": Path(s.log_path).read_text(),
            "refused": refused,
        }))
        await rt.remove_pod_sandbox(sid)

    asyncio.run(main())
    """
)


def _run(root: Path) -> dict[str, object]:
    import subprocess

    with contextlib.ExitStack() as stack:
        argv, env = [sys.executable, "-c", SCENARIO, str(root)], dict(os.environ)
        if os.geteuid() == 0:
            argv, env = stack.enter_context(as_nobody(["-c", SCENARIO, str(root)]))
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_plain_processes_without_root(busybox_tar: Path) -> None:
    # pytest's tmp_path is private to root: use a world-writable dir of our own
    root = Path(tempfile.mkdtemp(prefix="pykubelet-plain-"))
    try:
        root.chmod(0o777)
        shutil.copy(busybox_tar, root / "busybox.tar")
        (root / "busybox.tar").chmod(0o644)
        r = _run(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert r["caps"] == [False, "none", False, False]
    assert any("NOT enforced" in w for w in r["warnings"])  # type: ignore[attr-defined]
    assert r["netns"] == ""
    assert r["exit"] == ["CONTAINER_EXITED", 0, ""], r["log"]
    assert " stdout F plain\n" in str(r["log"]) and " stdout F /tmp\n" in str(r["log"])
    refused = r["refused"]
    assert isinstance(refused, list) and len(refused) == 2
    assert "overlayfs" in refused[0] and "runAsUser" in refused[1]

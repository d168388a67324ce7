"""Process runtime: the cost of one exec into a running image container, without HTTP.

``exec`` (the streaming path kubectl exec takes) and ``exec_sync`` (probes) of ``true``, N
runs one after the other: wall p50 / p99, the agent's own CPU per exec (this process, without
its children) and all the CPU per exec (the agent, the helper and the command: this process runs
in a cpuacct cgroup of its own for the run, so that what the zygote forks is counted as well as
what the agent reaps itself; the helper and the command, once they joined the container's
cgroup, are counted there). This is pykubelet's share of a ``kubectl exec`` minus the
HTTP/SPDY part (``bench_streaming.py`` has that one). The CPU columns survive a loaded machine.

Run: .venv/bin/python bench/bench_exec.py [N [HELPER ...]]   (default 300, native python; root)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from devtools.busybox_image import build_busybox_image
from devtools.cgroup_tree import remove_cgroup_dirs
from pykubelet.runtime import ContainerConfig, SandboxConfig, StreamIO
from pykubelet.runtime.process import ProcessRuntime


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _cgroup_cpu_s(dirs: list[Path]) -> float:
    return sum(int((d / "cpuacct.usage").read_text()) for d in dirs) / 1e9


@contextlib.contextmanager
def _own_cpuacct_cgroup(mount: Path, name: str) -> Iterator[Path]:
    """This process (and so what it forks from now on) in a fresh cpuacct cgroup."""
    home = next(
        line.split(":", 2)[2]
        for line in Path("/proc/self/cgroup").read_text().splitlines()
        if "cpuacct" in line.split(":")[1].split(",")
    )
    d = mount / name
    d.mkdir()
    try:
        (d / "cgroup.procs").write_text(str(os.getpid()))
        yield d
    finally:
        (mount / home.lstrip("/") / "cgroup.procs").write_text(str(os.getpid()))
        remove_cgroup_dirs([d])


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def _sink(_data: bytes) -> None:
    return None


async def run(n: int, root: Path, helper: str) -> list[str]:
    cgroup_root = f"pykubelet-bench-{secrets.token_hex(3)}"
    rt = ProcessRuntime(root / helper, cgroup_root=cgroup_root, helper=helper)
    mount = rt.cgroups.v1_dir("cpuacct", "")
    if mount is None:
        raise SystemExit("needs the cgroup v1 cpuacct controller (for the CPU columns)")
    with _own_cpuacct_cgroup(mount, f"{cgroup_root}-agent") as agent_cg:
        try:
            return await _measure(rt, n, root, helper, [agent_cg, mount / cgroup_root])
        finally:
            rt.close()  # the zygote leaves the agent's cgroup before it is removed
            remove_cgroup_dirs(rt.cgroups.dirs(cgroup_root))


async def _measure(
    rt: ProcessRuntime, n: int, root: Path, helper: str, cpu_dirs: list[Path]
) -> list[str]:
    tar = await asyncio.to_thread(build_busybox_image, root / "busybox.tar")
    image = (await rt.import_image(tar)).repo_tags[0]
    sc = SandboxConfig(
        name="exec", namespace="bench", uid=secrets.token_hex(8), log_directory=str(root / "logs")
    )
    sid = await rt.run_pod_sandbox(sc)
    rows = []
    try:
        cfg = ContainerConfig(name="c", image=image, command=("sleep", "3600"), log_path="c.log")
        cid = await rt.create_container(sid, cfg, sc)
        await rt.start_container(cid)
        io = StreamIO(stdout=_sink, stderr=_sink)

        async def exec_stream() -> object:
            return await rt.exec(cid, ["true"], io)

        async def exec_sync() -> object:
            return await rt.exec_sync(cid, ["true"], 10)

        kinds: dict[str, Callable[[], Awaitable[object]]] = {
            "exec": exec_stream,
            "exec_sync": exec_sync,
        }
        for name, call in kinds.items():
            await call()  # warm-up
            wall = []
            own0, all0 = _own_cpu_s(), _cgroup_cpu_s(cpu_dirs)
            for _ in range(n):
                t0 = time.perf_counter()
                await call()
                wall.append((time.perf_counter() - t0) * 1000)
            own_ms = (_own_cpu_s() - own0) * 1000 / n
            all_ms = (_cgroup_cpu_s(cpu_dirs) - all0) * 1000 / n
            rows.append(
                f"{helper:<7} {name:<10} {statistics.median(wall):>8.2f} "
                f"{_pct(wall, 0.99):>8.2f} {own_ms:>9.2f} {all_ms:>9.2f}"
            )
    finally:
        await rt.remove_pod_sandbox(sid)
    return rows


async def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    helpers = sys.argv[2:] or ["native", "python"]
    root = Path(tempfile.mkdtemp(prefix="pykubelet-bench-exec-"))
    try:
        print(
            f"exec `true` into a busybox image container, {n} runs; load {os.getloadavg()[0]:.2f}"
        )
        print(
            f"{'helper':<7} {'call':<10} {'p50 ms':>8} {'p99 ms':>8} {'agent CPU':>9} "
            f"{'all CPU':>9}  (ms per exec)"
        )
        for helper in helpers:
            for row in await run(n, root, helper):
                print(row, flush=True)
        print(f"load after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())

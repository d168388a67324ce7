"""Process runtime: the cost of one exec into a running image container, without HTTP.

``exec`` (the streaming path kubectl exec takes) and ``exec_sync`` (probes) of ``true``, N
runs one after the other: wall p50 / p99 and the agent's CPU per exec (this process and the
children it reaped: the helper and the command). This is pykubelet's share of a
``kubectl exec`` minus the HTTP/SPDY part (``bench_streaming.py`` has that one).

Run: .venv/bin/python bench/bench_exec.py [N [HELPER ...]]   (default 300, native python; root)
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from devtools.busybox_image import build_busybox_image
from devtools.cgroup_tree import remove_cgroup_dirs
from pykubelet.runtime import ContainerConfig, SandboxConfig, StreamIO
from pykubelet.runtime.process import ProcessRuntime


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def _sink(_data: bytes) -> None:
    return None


async def run(n: int, root: Path, helper: str) -> list[str]:
    rt = ProcessRuntime(
        root / helper, cgroup_root=f"pykubelet-bench-{secrets.token_hex(3)}", helper=helper
    )
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
            cpu0 = _cpu_s()
            for _ in range(n):
                t0 = time.perf_counter()
                await call()
                wall.append((time.perf_counter() - t0) * 1000)
            cpu_ms = (_cpu_s() - cpu0) * 1000 / n
            rows.append(
                f"{helper:<7} {name:<10} {statistics.median(wall):>8.2f} "
                f"{_pct(wall, 0.99):>8.2f} {cpu_ms:>8.2f}"
            )
    finally:
        await rt.remove_pod_sandbox(sid)
        rt.close()
        remove_cgroup_dirs(rt.cgroups.dirs(rt._cgroup_root))
    return rows


async def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    helpers = sys.argv[2:] or ["native", "python"]
    root = Path(tempfile.mkdtemp(prefix="pykubelet-bench-exec-"))
    try:
        print(
            f"exec `true` into a busybox image container, {n} runs; load {os.getloadavg()[0]:.2f}"
        )
        print(f"{'helper':<7} {'call':<10} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms':>8}")
        for helper in helpers:
            for row in await run(n, root, helper):
                print(row, flush=True)
        print(f"load after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())

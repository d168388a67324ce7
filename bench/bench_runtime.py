"""Process runtime: start latency of N pods (sandbox + one container each) and the memory of
the helper processes kept per pod (holder) and per container (shim).

Run: .venv/bin/python bench/bench_runtime.py [N ...]   (default 10 50 110; root for namespaces)
The C helper runs every size; the Python fallback helper runs the smallest, for comparison.
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
from pathlib import Path

from devtools.busybox_image import build_busybox_image
from devtools.cgroup_tree import remove_cgroup_dirs
from pykubelet.runtime import ContainerConfig, SandboxConfig
from pykubelet.runtime.process import ProcessRuntime


def _mem_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB; PSS splits shared pages between the processes sharing them."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


async def _one_pod(rt: ProcessRuntime, image: str, i: int, logs: Path) -> tuple[float, str, str]:
    t0 = time.perf_counter()
    sc = SandboxConfig(
        name=f"bench-{i}",
        namespace="bench",
        uid=secrets.token_hex(8),
        hostname=f"bench-{i}",
        log_directory=str(logs / f"p{i}"),
    )
    sid = await rt.run_pod_sandbox(sc)
    cfg = ContainerConfig(
        name="c", image=image, command=("sh", "-c", "echo up; exec sleep 3600"), log_path="c/0.log"
    )
    cid = await rt.create_container(sid, cfg, sc)
    await rt.start_container(cid)
    return time.perf_counter() - t0, sid, cid


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


async def run(n: int, root: Path, tar: Path | None, helper: str) -> list[str]:
    rt = ProcessRuntime(
        root / f"n{n}-{helper}",
        cgroup_root=f"pykubelet-bench-{secrets.token_hex(3)}",
        helper=helper,
    )
    image = "host"
    if tar is not None and rt.capabilities.overlay:
        image = (await rt.import_image(tar)).repo_tags[0]
    await rt._helper()  # compile outside the measurement
    rows = []
    try:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(_one_pod(rt, image, i, root / "logs") for i in range(n)))
        wall = time.perf_counter() - t0
        lat = [r[0] * 1000 for r in results]
        holder_rss, holder_pss, shim_rss, shim_pss = [], [], [], []
        for s in await rt.list_pod_sandboxes():
            rec = rt._sandbox(s.id)
            pids = [rec.holder_pid, *_children(rec.holder_pid)]
            mems = [_mem_kib(p) for p in pids]
            holder_rss.append(sum(m[0] for m in mems))
            holder_pss.append(sum(m[1] for m in mems))
        for c in await rt.list_containers():
            shim, _pid = rt._identities(rt.layout.container_dir(c.id))
            if shim is not None:
                rss, pss = _mem_kib(shim[0])
                shim_rss.append(rss)
                shim_pss.append(pss)
        rows.append(
            f"{n:>5} {helper:<7} {image[:24]:<24} "
            f"{statistics.median(lat):>8.1f} {_pct(lat, 0.99):>8.1f} "
            f"{wall:>7.2f} {n / wall:>8.1f} "
            + " ".join(
                f"{statistics.mean(v) / 1024:>7.2f}"
                for v in (holder_rss, holder_pss, shim_rss, shim_pss)
            )
        )
    finally:
        t1 = time.perf_counter()
        for s in await rt.list_pod_sandboxes():
            await rt.remove_pod_sandbox(s.id)
        rows.append(f"      teardown of {n} pods: {time.perf_counter() - t1:.2f}s")
        remove_cgroup_dirs(rt.cgroups.dirs(rt._cgroup_root))
    return rows


def _busybox_tar(root: Path) -> Path | None:
    if not os.path.exists("/bin/busybox"):
        return None
    return build_busybox_image(root / "busybox.tar")


async def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10, 50, 110]
    root = Path(tempfile.mkdtemp(prefix="pykubelet-bench-"))
    try:
        tar = await asyncio.to_thread(_busybox_tar, root)
        mode = "namespaces+cgroups+overlay" if os.geteuid() == 0 else "plain processes"
        print(f"process runtime, {mode}; helpers' memory per pod / per container (MiB)")
        print(
            f"{'pods':>5} {'helper':<7} {'image':<24} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'wall s':>7} {'pods/s':>8} "
            f"{'hold RSS':>7} {'hold PSS':>7} {'shim RSS':>7} {'shim PSS':>7}"
        )
        runs = [(n, "native") for n in sizes] + [(min(sizes), "python")]
        for n, helper in runs:
            for row in await run(n, root, tar, helper):
                print(row, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())

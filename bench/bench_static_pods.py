"""Static pod start-up and idle cost: N manifests written at once → every container running.

Prints p50/p99 start latency (file written → the pod's containers all running, as the pod
layer reports it) and pods/s for 10, 50 and 110 pods; then, with 110 pods running, the idle
agent's CPU (% of one core over 10 s) and RSS, and the RSS of every helper process the runtime
keeps (per pod). The agent runs in this process, so its figures are this process's.

    .venv/bin/python bench/bench_static_pods.py [--runtime process|fake] [--counts 10,50,110]
        [--host-network]

Before each round the bench waits until the machine is quiet: at least ``SETTLE_AFTER_DELETE_S``
after the previous round's pods were removed, and the CPUs idle. The kernel tears the previous
round's network namespaces down in the background, and on ext4 without a journal (this
project's machines) every new inode skips over the inodes of its block group freed in the last
60 s (6 minutes while their inode table block is dirty, i.e. for the first ~35 s), one inode
table lookup each (the kernel's ``recently_deleted``): a round started right after deleting 110
pods pays for both. ``--no-settle`` measures that back-to-back case.

``--host-network`` gives the pods ``hostNetwork: true``, leaving out the network set-up of each pod
(as root, every other pod gets the built-in bridge network), to tell the runtime's share from
the network's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from pykubelet.agent import Agent
from pykubelet.config import load_config
from pykubelet.network import DEFAULT_BRIDGE

POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: bench-{i}}}
spec:
  terminationGracePeriodSeconds: 2
  hostNetwork: {host_network}
  containers:
  - name: sleep
    image: busybox
    command: ["sleep", "3600"]
"""

IDLE_WINDOW_S = 10.0
SETTLE_AFTER_DELETE_S = 65.0  # written back after ~35 s, then "recent" until 60 s after the delete
_last_teardown = [0.0]
CGROUP_ROOT = f"pykubelet-bench-{secrets.token_hex(4)}"
BUSYBOX_TAR = Path(tempfile.gettempdir()) / f"pykubelet-bench-busybox-{os.getpid()}.tar"


def cgroup_pids() -> set[int]:
    """Every process in the bench's cgroup subtree, under any hierarchy."""
    pids: set[int] = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split(" - ", 1)[-1].split()[0] not in ("cgroup", "cgroup2"):
            continue
        base = Path(line.split()[4]) / CGROUP_ROOT
        if not base.is_dir():
            continue
        for procs in base.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(x) for x in procs.read_text().split())
    return pids


def rss_bytes(pid: int | str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def pids_mentioning(text: str) -> set[int]:
    """Processes whose command line mentions ``text`` (the runtime's helpers name the root)."""
    out = set()
    needle = text.encode()
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError):
                if needle in Path(f"/proc/{d}/cmdline").read_bytes():
                    out.add(int(d))
    return out


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def delete_link(name: str) -> None:
    subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def one_round(
    runtime: str, count: int, keep: bool, host_network: bool = False
) -> tuple[dict[str, float], Agent]:
    work = Path(tempfile.mkdtemp(prefix="pykubelet-bench-"))
    pods_dir = work / "pods"
    pods_dir.mkdir()
    config = load_config(
        [
            "--runtime",
            runtime,
            "--root-dir",
            str(work / "root"),
            "--pod-manifest-path",
            str(pods_dir),
            "--enable-server=false",
            "--healthz-port",
            "0",
            "--address",
            "127.0.0.1",
            "--node-name",
            "bench",
            "--max-pods",
            "200",
            "--cgroup-root",
            CGROUP_ROOT,
        ]
    )
    if runtime == "process":
        await import_busybox(work / "root")
    agent = Agent(config)
    task = asyncio.create_task(agent.run())
    await agent.ready.wait()
    assert agent.manager is not None
    hostnet = str(host_network).lower()

    def write_manifests() -> None:
        for i in range(count):
            (pods_dir / f"bench-{i}.yaml").write_text(POD.format(i=i, host_network=hostnet))

    # The user writes the files, not the agent: a thread, so the agent's event loop runs on
    # meanwhile. Every latency counts from before the first file is written.
    t0 = time.monotonic()
    writer = asyncio.create_task(asyncio.to_thread(write_manifests))
    started: dict[str, float] = {}
    deadline = t0 + 60
    while len(started) < count and time.monotonic() < deadline:
        now = time.monotonic()
        for p in agent.manager.list_pods():
            st = p.status
            if p.uid in started or st is None or not st.container_statuses:
                continue
            if all(c.state.running is not None for c in st.container_statuses):
                started[p.uid] = now - t0
        await asyncio.sleep(0.005)
    await writer
    lat = list(started.values())
    result = {
        "pods": count,
        "running": len(lat),
        "p50_s": statistics.median(lat) if lat else float("nan"),
        "p99_s": percentile(lat, 99) if lat else float("nan"),
        "all_s": max(lat) if lat else float("nan"),
        "pods_per_s": count / max(lat) if lat else 0.0,
    }
    if not keep:
        await teardown(agent, task, pods_dir, work)
    else:
        agent._bench = (task, pods_dir, work)  # type: ignore[attr-defined]
    return result, agent


def remove_cgroups() -> None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split(" - ", 1)[-1].split()[0] not in ("cgroup", "cgroup2"):
            continue
        base = Path(line.split()[4]) / CGROUP_ROOT
        for dirpath, _dirs, _files in sorted(os.walk(base), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


async def import_busybox(root: Path) -> None:
    from devtools.busybox_image import build_busybox_image
    from pykubelet.runtime.process import ProcessRuntime

    if not BUSYBOX_TAR.exists():
        build_busybox_image(BUSYBOX_TAR, ref="docker.io/library/busybox:latest")
    runtime = ProcessRuntime(root)
    await runtime.import_image(BUSYBOX_TAR)
    # the compiled per-container helper comes with the package (built by `make venv` / pip)
    from pykubelet.runtime.process.shimbin import native_helper

    native_helper()


def _busy_fraction(window_s: float) -> float:
    def sample() -> list[int]:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]

    a = sample()
    time.sleep(window_s)
    b = sample()
    d = [y - x for x, y in zip(a, b, strict=True)]
    total = sum(d) or 1
    return 1 - (d[3] + d[4]) / total  # idle + iowait


async def settle() -> float:
    """Wait for a quiet machine (see the module docstring); return the seconds waited."""
    t0 = time.monotonic()
    left = _last_teardown[0] + SETTLE_AFTER_DELETE_S - t0
    if _last_teardown[0] and left > 0:
        await asyncio.sleep(left)
    while time.monotonic() - t0 < 90 and await asyncio.to_thread(_busy_fraction, 0.5) > 0.10:
        pass
    return time.monotonic() - t0


async def teardown(agent: Agent, task: asyncio.Task[None], pods_dir: Path, work: Path) -> None:
    assert agent.manager is not None
    for name in os.listdir(pods_dir):
        os.unlink(pods_dir / name)
    deadline = time.monotonic() + 60
    while agent.manager.list_pods() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await agent.manager.wait_terminated()
    agent.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    shutil.rmtree(work, ignore_errors=True)
    _last_teardown[0] = time.monotonic()


async def idle(agent: Agent, count: int) -> dict[str, float]:
    await asyncio.sleep(2)  # let the last syncs settle
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    await asyncio.sleep(IDLE_WINDOW_S)
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / (t1 - t0) * 100
    helpers: dict[str, list[int]] = {}
    others = pids_mentioning(agent.config.root_dir) - {os.getpid()}
    for pid in set(descendants(os.getpid())) | cgroup_pids() | others:
        helpers.setdefault(comm(pid), []).append(rss_bytes(pid))
    out = {"idle_cpu_pct": cpu, "agent_rss_mib": rss_bytes() / 2**20}
    for name, sizes in sorted(helpers.items()):
        out[f"{name}: n"] = len(sizes)
        out[f"{name}: MiB per pod"] = sum(sizes) / 2**20 / max(count, 1)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", default="process", choices=("process", "fake"))
    ap.add_argument("--counts", default="10,50,110")
    ap.add_argument("--host-network", action="store_true", help="pods without a pod network")
    ap.add_argument("--no-settle", action="store_true", help="rounds back to back")
    args = ap.parse_args()
    log_file = Path(tempfile.gettempdir()) / f"pykubelet-bench-{os.getpid()}.log"
    logging.basicConfig(level=logging.WARNING, filename=log_file)
    print(f"agent log: {log_file}")
    counts = [int(c) for c in args.counts.split(",")]
    net = (
        "host network"
        if args.host_network
        else "pod network (built-in, or CNI with a conf) as root"
    )
    print(f"runtime: {args.runtime}, {net}")
    print(
        f"{'pods':>5} {'running':>8} {'p50 s':>8} {'p99 s':>8} {'all s':>8} {'pods/s':>8} "
        f"{'settled s':>10}"
    )
    bridge_existed = link_exists(DEFAULT_BRIDGE)
    last: Agent | None = None
    for i, count in enumerate(counts):
        waited = 0.0 if args.no_settle else await settle()
        res, agent = await one_round(
            args.runtime, count, keep=i == len(counts) - 1, host_network=args.host_network
        )
        print(
            f"{res['pods']:>5} {res['running']:>8} {res['p50_s']:>8.3f} {res['p99_s']:>8.3f} "
            f"{res['all_s']:>8.3f} {res['pods_per_s']:>8.1f} {waited:>10.1f}"
        )
        last = agent
    assert last is not None
    figures = await idle(last, counts[-1])
    print(
        f"\nidle with {counts[-1]} pods, over {IDLE_WINDOW_S:.0f} s (processes by name; "
        "'sleep' is the containers' own process, the rest are runtime helpers):"
    )
    for k, v in figures.items():
        print(f"  {k:<40} {v:10.2f}")
    await teardown(last, *last._bench)  # type: ignore[attr-defined]
    remove_cgroups()
    if not bridge_existed:  # the agents' built-in network made it; nothing else uses it
        delete_link(DEFAULT_BRIDGE)
    BUSYBOX_TAR.unlink(missing_ok=True)
    logging.shutdown()
    if log_file.stat().st_size == 0:
        log_file.unlink()


if __name__ == "__main__":
    asyncio.run(main())

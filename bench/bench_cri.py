"""Static pods on containerd: pykubelet vs the upstream Go kubelet v1.20.2, on the same daemon.

For 10, 50 and 110 pods: N manifests written at once → N containers RUNNING as containerd
reports them (polled over CRI by this process, the same way for both agents), the agent's CPU
seconds and RSS until then; with the largest N running, the idle agent's CPU (% of one core) over
``IDLE_WINDOW_S``. One agent after the other, each a subprocess, on one private containerd
(``devtools.containerd``: cgroupfs, runc, CNI bridge), pods removed between rounds.

    .venv/bin/python bench/bench_cri.py [--counts 10,50,110] [--agents pykubelet,kubelet,direct]

``direct`` is the floor: this process makes the three CRI calls of every pod at once, with no
agent (what containerd itself needs to run N pods).

The Go kubelet is the binary ``scripts/upstream-k8s/setup.sh`` builds (``$UPSTREAM_K8S_DIR/bin``,
default ``/var/cache/pykubelet/upstream-k8s/bin``), run with the flags ``start.sh standalone``
uses, but with this bench's own root dir, config, ports and cgroup root (never ``/upstream-k8s``)
and private ``/var/log/pods`` (``cri_node.py``: the daemon, the agents, the clean-up).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from cri_node import (
    UPSTREAM_BIN,
    Agent,
    clear,
    containerd_node,
    cpu_seconds,
    free_port,
    kubelet_agent,
    remove_all,
    rss_mib,
    running,
    upstream_missing,
    wait_until,
    write_manifests,
)

from devtools.containerd import BUSYBOX_REF, Containerd
from pykubelet.runtime import ContainerConfig, SandboxConfig
from pykubelet.runtime.cri import CriRuntime

IDLE_WINDOW_S = 20.0


def pykubelet_agent(work: Path, c: Containerd, manifests: Path) -> Agent:
    return Agent(
        "pykubelet",
        [
            sys.executable,
            "-m",
            "pykubelet.cli",
            "run",
            "--container-runtime-endpoint",
            f"unix://{c.socket}",
            "--root-dir",
            str(work / "pykubelet"),
            "--pod-manifest-path",
            str(manifests),
            "--node-name",
            "bench-node",
            "--address",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--healthz-port",
            "0",
            "--cgroup-root",
            c.cgroup_parent,
            "--cert-dir",
            str(work / "pykubelet-pki"),
            # as the Go kubelet's standalone config here: anonymous, AlwaysAllow
            "--anonymous-auth=true",
            "--authorization-mode",
            "AlwaysAllow",
        ],
    )


async def one(agent: Agent, rt: CriRuntime, manifests: Path, n: int, log: Path) -> dict[str, float]:
    agent.start(log)
    await asyncio.sleep(5)  # start-up, the same allowance for both
    cpu0 = cpu_seconds(agent.pid)
    t0 = time.monotonic()
    write_manifests(manifests, n)

    async def all_running() -> bool:
        assert agent.proc is not None
        if agent.proc.poll() is not None:
            raise RuntimeError(f"{agent.name} exited {agent.proc.returncode}; see {log}")
        return await running(rt) >= n

    ok = await wait_until(all_running, 600)
    took = time.monotonic() - t0
    out = {
        "all_running_s": took if ok else float("nan"),
        "cpu_s": cpu_seconds(agent.pid) - cpu0,
        "rss_mib": rss_mib(agent.pid),
    }
    return out


async def direct(
    rt: CriRuntime, c: Containerd, work: Path, n: int, parallel: int
) -> dict[str, float]:
    """The floor: the three CRI calls each pod needs (RunPodSandbox, CreateContainer,
    StartContainer), ``parallel`` pods at a time (0: all at once), from this process; no agent."""
    gate = asyncio.Semaphore(parallel or n)

    async def pod(i: int) -> None:
        async with gate:
            await one_pod(i)

    async def one_pod(i: int) -> None:
        sc = SandboxConfig(
            name=f"direct-{i}",
            namespace="default",
            uid=f"direct-{i}-{n}",
            hostname=f"direct-{i}",
            log_directory=str(work / "direct-logs" / f"{n}-{i}"),
            cgroup_parent=f"{c.cgroup_parent}/poddirect-{i}-{n}",
        )
        sid = await rt.run_pod_sandbox(sc)
        cfg = ContainerConfig(
            name="sleep", image=BUSYBOX_REF, command=("sleep", "3600"), log_path="sleep/0.log"
        )
        await rt.start_container(await rt.create_container(sid, cfg, sc))

    t0 = time.monotonic()
    await asyncio.gather(*(pod(i) for i in range(n)))
    await wait_until(lambda: running_at_least(rt, n), 600)
    return {"all_running_s": time.monotonic() - t0, "cpu_s": float("nan"), "rss_mib": 0.0}


async def running_at_least(rt: CriRuntime, n: int) -> bool:
    return await running(rt) >= n


async def idle(agent: Agent) -> float:
    await asyncio.sleep(5)
    c0, t0 = cpu_seconds(agent.pid), time.monotonic()
    await asyncio.sleep(IDLE_WINDOW_S)
    return 100 * (cpu_seconds(agent.pid) - c0) / (time.monotonic() - t0)


async def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--counts", default="10,50,110")
    ap.add_argument("--agents", default="pykubelet,kubelet")
    ap.add_argument("--log-dir", default="", help="keep the agents' logs here")
    ap.add_argument("--direct-parallel", type=int, default=0, help="pods at a time (0: all)")
    args = ap.parse_args()
    counts = [int(x) for x in args.counts.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-cri-"))
    logs = Path(args.log_dir) if args.log_dir else work
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[int, dict[str, float]]] = {}
    async with containerd_node(work) as (c, rt):
        manifests = work / "manifests"
        manifests.mkdir()
        for name in args.agents.split(","):
            if name == "direct":
                results["containerd alone"] = {}
                for n in counts:
                    try:
                        r = await direct(rt, c, work, n, args.direct_parallel)
                        results["containerd alone"][n] = r
                        print(f"{'containerd alone':16} {n:4} pods: {r}", flush=True)
                    finally:
                        await remove_all(rt)
                continue
            if name == "kubelet":
                if why := upstream_missing():
                    print(f"skipping the Go kubelet: {why}")
                    continue
                agent = kubelet_agent(work, c, manifests, UPSTREAM_BIN)
            else:
                agent = pykubelet_agent(work, c, manifests)
            results[agent.name] = {}
            for n in counts:
                try:
                    r = await one(agent, rt, manifests, n, logs / f"{name}.log")
                    if n == counts[-1]:
                        r["idle_cpu_pct"] = await idle(agent)
                    results[agent.name][n] = r
                    print(f"{agent.name:16} {n:4} pods: {r}", flush=True)
                finally:
                    await clear(rt, manifests)
                    agent.stop()
    print()
    print("| agent | pods | to all running (s) | agent CPU (s) | agent RSS (MiB) | idle CPU (%) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rows in results.items():
        for n, r in rows.items():
            idle_pct = f"{r['idle_cpu_pct']:.1f}" if "idle_cpu_pct" in r else ""
            print(
                f"| {name} | {n} | {r['all_running_s']:.1f} | {r['cpu_s']:.1f} | "
                f"{r['rss_mib']:.0f} | {idle_pct} |"
            )


if __name__ == "__main__":
    asyncio.run(main())

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
uses, but with this bench's own root dir, config, ports and cgroup root (never ``/upstream-k8s``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from devtools.busybox_image import build_busybox_image, build_pause_image
from devtools.containerd import BUSYBOX_REF, PAUSE_REF, Containerd
from pykubelet.runtime import ContainerConfig, ContainerState, SandboxConfig
from pykubelet.runtime.cri import CriRuntime

POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: bench-{i}, namespace: default}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: sleep
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"""
IDLE_WINDOW_S = 20.0
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def remove_cgroup_tree(name: str) -> None:
    """The Go kubelet's cgroup root (its QoS and pod cgroups), once empty."""
    for h in Path("/sys/fs/cgroup").iterdir():
        d = h / name
        if not d.is_dir():
            continue
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            d.rmdir()


def unmount_under(root: Path) -> None:
    prefix = str(root) + "/"
    for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
        target = line.split()[4]
        if target.startswith(prefix):
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)


@dataclass
class Agent:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self, log: Path) -> None:
        with log.open("ab") as f:
            self.proc = subprocess.Popen(self.argv, stdout=f, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def kubelet_agent(work: Path, c: Containerd, manifests: Path, bin_dir: Path) -> Agent:
    root = f"{c.cgroup_parent}-kubelet"
    for h in Path("/sys/fs/cgroup").iterdir():  # as start.sh: the cgroup root must exist
        if not (h / "cgroup.procs").exists():
            continue
        d = h / root
        d.mkdir(exist_ok=True)
        if (h / "cpuset.cpus").exists():
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not (d / f).read_text().strip():
                    (d / f).write_text((h / f).read_text())
    config = work / "kubelet-config.yaml"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "kubelet.config.k8s.io/v1beta1",
                "kind": "KubeletConfiguration",
                "address": "127.0.0.1",
                "port": free_port(),
                "readOnlyPort": 0,
                "healthzBindAddress": "127.0.0.1",
                "healthzPort": free_port(),
                "cgroupDriver": "cgroupfs",
                "cgroupRoot": f"/{root}",
                "failSwapOn": False,
                "staticPodPath": str(manifests),
                "makeIPTablesUtilChains": False,
                "resolvConf": "/etc/resolv.conf",
                "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
                "authorization": {"mode": "AlwaysAllow"},
            }
        )
    )
    return Agent(
        "kubelet v1.20.2",
        [
            str(bin_dir / "kubelet"),
            f"--config={config}",
            "--container-runtime=remote",
            f"--container-runtime-endpoint=unix://{c.socket}",
            f"--pod-infra-container-image={PAUSE_REF}",
            f"--root-dir={work / 'kubelet'}",
            f"--cert-dir={work / 'kubelet' / 'pki'}",
            "--hostname-override=bench-node",
            "--v=1",
        ],
    )


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


async def running(rt: CriRuntime) -> int:
    return sum(
        1
        for x in await rt.list_containers()
        if x.state is ContainerState.RUNNING and x.name == "sleep"
    )


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


def write_manifests(manifests: Path, n: int) -> None:
    for i in range(n):
        (manifests / f"bench-{i}.yaml").write_text(POD.format(i=i, image=BUSYBOX_REF))


def remove_manifests(manifests: Path) -> None:
    for f in manifests.iterdir():
        f.unlink()


async def clear(rt: CriRuntime, manifests: Path) -> None:
    remove_manifests(manifests)

    async def empty() -> bool:
        return not await rt.list_pod_sandboxes()

    if not await wait_until(empty, 120):  # the agent did not remove them: do it ourselves
        await remove_all(rt)


async def remove_all(rt: CriRuntime) -> None:
    for sb in await rt.list_pod_sandboxes():
        await rt.stop_pod_sandbox(sb.id)
        await rt.remove_pod_sandbox(sb.id)


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
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="10,50,110")
    ap.add_argument("--agents", default="pykubelet,kubelet")
    ap.add_argument("--log-dir", default="", help="keep the agents' logs here")
    ap.add_argument("--direct-parallel", type=int, default=0, help="pods at a time (0: all)")
    args = ap.parse_args()
    counts = [int(x) for x in args.counts.split(",")]
    bin_dir = Path(os.environ.get("UPSTREAM_K8S_DIR", "/var/cache/pykubelet/upstream-k8s")) / "bin"
    work = Path(tempfile.mkdtemp(prefix="bench-cri-"))
    logs = Path(args.log_dir) if args.log_dir else work
    logs.mkdir(parents=True, exist_ok=True)
    c = Containerd(work / "containerd").start()
    rt = CriRuntime(f"unix://{c.socket}")
    results: dict[str, dict[int, dict[str, float]]] = {}
    try:
        c.import_image(build_pause_image(work / "pause.tar", PAUSE_REF))
        c.import_image(build_busybox_image(work / "busybox.tar", BUSYBOX_REF))
        await rt.start()
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
                if not (bin_dir / "kubelet").exists():
                    print(f"skipping the Go kubelet: {bin_dir / 'kubelet'} is missing")
                    continue
                agent = kubelet_agent(work, c, manifests, bin_dir)
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
    finally:
        await rt.aclose()
        c.stop()
        remove_cgroup_tree(f"{c.cgroup_parent}-kubelet")
        unmount_under(work)  # the Go kubelet bind-mounts its root dir onto itself
        shutil.rmtree(work, ignore_errors=True)
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

"""The agent SIGKILLed in the middle of a 110-pod static start, ``--rounds`` times (issue #14).

Each round: the manifests are in place, a ``pykubelet run`` (process runtime, a CNI bridge of
its own) starts and is SIGKILLed once a random number of the pods' containers run; a new agent
starts and catches up. Printed per round: when the kill came and how many containers ran then,
how long the next agent took until every pod ran exactly once with nothing left to clean up,
and what it then found (``tests/e2e/crash.py``): pods running, duplicates, restarted
containers, leftovers, ready sandboxes without an IP, lost log lines, leaked cgroups, veths and
addresses. Then the pods are
deleted (manifests removed) and the round checks that nothing at all is left.

    .venv/bin/python bench/bench_crash.py [--pods 110] [--rounds 10] [--seed 14]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("PYKUBELET_TREE") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

from devtools.busybox_image import build_busybox_image  # noqa: E402
from pykubelet.runtime.process import ProcessRuntime  # noqa: E402
from tests.e2e.crash import kill_mid_start, observe, recover, write_pods  # noqa: E402
from tests.e2e.node import Node, wait_for  # noqa: E402


async def _teardown(node: Node) -> tuple[int, int]:
    """Remove every pod through the agent; (processes, cgroup dirs) left afterwards."""
    for f in node.pods.iterdir():
        f.unlink()
    reader = ProcessRuntime(node.root)

    async def empty() -> bool:
        return not (await reader.list_pod_sandboxes()) and not (await reader.list_containers())

    deadline = time.monotonic() + 120
    while not await empty() and time.monotonic() < deadline:  # noqa: ASYNC110 (files: no event)
        await asyncio.sleep(0.2)
    await asyncio.to_thread(wait_for, lambda: not list(node._cgroup_pids()), 60, "no processes")
    out = await observe(node, reader)
    dirs = sum(1 for d in node._cgroup_dirs() for _ in os.walk(d)) - len(list(node._cgroup_dirs()))
    return len(list(node._cgroup_pids())), dirs + out.leaked_veths + out.leaked_ips


def _node(base: Path, pods: int) -> Node:
    tar = build_busybox_image(base / "busybox.tar", "docker.io/library/busybox:latest")
    node = Node(base=base / "node", image_tar=tar, extra_args=["--max-pods", str(pods + 10)])
    subprocess.run(
        [sys.executable, "-m", "pykubelet.cli", "images", "import", "--root-dir", str(node.root),
         str(tar)], check=True, capture_output=True,
    )  # fmt: skip
    return node


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--pods", type=int, default=110)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--seed", type=int, default=14)
    a = p.parse_args()
    rng = random.Random(a.seed)
    base = Path(tempfile.mkdtemp(prefix="pykubelet-bench-crash-"))
    node = await asyncio.to_thread(_node, base, a.pods)
    print(f"{a.pods} static pods (process runtime, CNI bridge), {a.rounds} rounds; load: "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    head = (
        f"{'round':>5} {'kill s':>7} {'run@kill':>8} {'catch-up s':>10} {'running':>7} "
        f"{'dup':>4} {'restart':>7} {'leftover':>8} {'no IP':>5} {'lost ln':>7} {'cgroups':>7} "
        f"{'veths':>5} {'IPs':>4} {'after delete':>12}"
    )
    print(head)
    bad = 0
    try:
        for r in range(1, a.rounds + 1):
            write_pods(node, a.pods)
            kill = await kill_mid_start(node, a.pods, rng)
            out, took = await recover(node, a.pods)
            procs, leaked = await _teardown(node)
            node.stop()
            bad += (out.pods != a.pods) + (not out.clean) + bool(procs or leaked)
            print(
                f"{r:>5} {kill.after_s:>7.2f} {kill.running:>8} {took:>10.1f} {out.pods:>7} "
                f"{out.duplicates:>4} {out.restarts:>7} {out.leftovers:>8} {out.unaddressed:>5} "
                f"{out.lost_lines:>7} "
                f"{out.leaked_cgroups:>7} {out.leaked_veths:>5} {out.leaked_ips:>4} "
                f"{f'{procs} procs, {leaked} left':>12}",
                flush=True,
            )
    finally:
        await asyncio.to_thread(node.cleanup)
    print(f"agent logs: {base / 'node'}/agent-*.log; load: {os.getloadavg()[0]:.1f}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

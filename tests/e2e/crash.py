"""The agent SIGKILLed in the middle of a static-pod start (issue #14), and what must hold once
the next agent has caught up: every pod running exactly once, no container started twice, no
log line lost, no cgroup, veth or pod address left over.

Each pod's container prints numbered lines (``line 0``, ``line 1``, ...), so a lost line is a gap
in its log and a container started twice restarts the numbering (or has attempt > 0). The state
is read from the runtime's own files by a second ``ProcessRuntime`` on the node's root (read
only: listings), cgroups from the cgroup file systems, veths from the node's private bridge and
addresses from its host-local IPAM directory. Used by ``tests/e2e/test_agent_crash.py`` (small)
and ``bench/bench_crash.py`` (110 pods, 10 kills).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pykubelet.logs import parse_record
from pykubelet.pods.runtime_config import LABEL_POD_UID
from pykubelet.runtime import ContainerState, ContainerStatus, SandboxState, SandboxStatus
from pykubelet.runtime.process import ProcessRuntime
from tests.e2e.node import Node, wait_for

COUNTER_POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: crash-{i}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: count
    image: busybox
    command: ["sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.2; done"]
"""

_LINE = re.compile(rb"line (\d+)")


@dataclass(frozen=True, slots=True)
class Outcome:
    pods: int  # pods whose container runs
    duplicates: int  # extra ready sandboxes or running containers of one pod
    restarts: int  # containers that are not the pod's first (attempt > 0, or a second record)
    leftovers: int  # sandboxes or containers of the pods that are neither ready nor running
    unaddressed: int  # ready sandboxes without a pod IP (a network set-up never finished)
    lost_lines: int  # gaps in the running containers' numbered output
    leaked_cgroups: int  # cgroup directories no live sandbox or container accounts for
    leaked_veths: int  # interfaces on the node's bridge beyond one per running pod
    leaked_ips: int  # addresses the IPAM holds beyond one per running pod

    @property
    def clean(self) -> bool:
        return not (
            self.duplicates
            or self.restarts
            or self.leftovers
            or self.unaddressed
            or self.lost_lines
            or self.leaked_cgroups
            or self.leaked_veths
            or self.leaked_ips
        )


def write_pods(node: Node, count: int) -> None:
    for i in range(count):
        node.write_pod(f"crash-{i}", COUNTER_POD.format(i=i))


def _lost_lines(log_path: str) -> int:
    try:
        data = Path(log_path).read_bytes()
    except OSError:
        return 0
    numbers = []
    for line in data.splitlines():
        m = _LINE.fullmatch(parse_record(line).message)
        if m:
            numbers.append(int(m.group(1)))
    if not numbers:
        return 0
    return max(numbers) + 1 - len(set(numbers))  # from line 0 on: every one must be there


def _cgroup_dirs(node: Node) -> set[str]:
    """Every directory under the node's cgroup root (relative to it), in one hierarchy."""
    for base in node._cgroup_dirs():
        return {
            os.path.relpath(dirpath, base)
            for dirpath, _dirs, _files in os.walk(base)
            if dirpath != str(base)
        }
    return set()


def _ancestors(rel: str) -> set[str]:
    parts = rel.strip("/").split("/")
    return {"/".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _ipam_addresses(node: Node) -> int:
    d = node.base / "cni-networks"
    if not d.is_dir():
        return 0
    return sum(
        1 for p in d.rglob("*") if p.is_file() and re.fullmatch(r"[0-9a-f.:]+", p.name) is not None
    )


async def observe(node: Node, reader: ProcessRuntime) -> Outcome:
    return _outcome(node, await reader.list_pod_sandboxes(), await reader.list_containers())


def _under_root(node: Node, cgroup: str) -> str:
    """A runtime cgroup path relative to the node's cgroup root."""
    return cgroup.strip("/").removeprefix(node.cgroup_root.strip("/") + "/")


def _outcome(
    node: Node, sandboxes: Sequence[SandboxStatus], containers: Sequence[ContainerStatus]
) -> Outcome:
    ready = Counter(s.uid for s in sandboxes if s.state is SandboxState.READY)
    running = [c for c in containers if c.state is ContainerState.RUNNING]
    per_pod = Counter(c.labels.get(LABEL_POD_UID, "") for c in running)
    records = Counter(c.labels.get(LABEL_POD_UID, "") for c in containers)
    pods = sum(1 for uid in per_pod if ready[uid])
    duplicates = sum(n - 1 for n in ready.values()) + sum(n - 1 for n in per_pod.values())
    restarts = sum(1 for c in containers if c.attempt > 0) + sum(n - 1 for n in records.values())
    leftovers = sum(1 for s in sandboxes if s.state is not SandboxState.READY) + sum(
        1 for c in containers if c.state is not ContainerState.RUNNING
    )
    lost = sum(_lost_lines(c.log_path) for c in running)
    accounted: set[str] = set()
    for s in sandboxes:
        if s.state is SandboxState.READY and s.cgroup_parent:
            accounted |= _ancestors(_under_root(node, f"{s.cgroup_parent}/sandbox-{s.id[:12]}"))
    for c in running:
        if c.cgroup_path:
            accounted |= _ancestors(_under_root(node, c.cgroup_path))
    leaked_cgroups = len(_cgroup_dirs(node) - accounted)
    brif = Path("/sys/class/net") / node.bridge / "brif"
    veths = len(os.listdir(brif)) if brif.is_dir() else 0
    return Outcome(
        pods=pods,
        duplicates=duplicates,
        restarts=restarts,
        leftovers=leftovers,
        unaddressed=sum(1 for s in sandboxes if s.state is SandboxState.READY and not s.ip),
        lost_lines=lost,
        leaked_cgroups=leaked_cgroups,
        leaked_veths=max(0, veths - pods),
        leaked_ips=max(0, _ipam_addresses(node) - pods),
    )


@dataclass(frozen=True, slots=True)
class Kill:
    after_s: float  # from the agent's start
    running: int  # containers running when it was killed


async def kill_mid_start(node: Node, count: int, rng: random.Random, timeout_s: float = 60) -> Kill:
    """Start the agent and SIGKILL it once a random number (1 .. count-1) of the pods run."""
    reader = ProcessRuntime(node.root)
    target = rng.randint(1, max(1, count - 1))
    t0 = time.monotonic()
    node.start(wait=False)
    running = 0
    while time.monotonic() - t0 < timeout_s:
        containers = await reader.list_containers()
        running = sum(1 for c in containers if c.state is ContainerState.RUNNING)
        if running >= target:
            break
        await asyncio.sleep(0.01)
    after = time.monotonic() - t0
    node.stop(signal.SIGKILL)
    return Kill(after_s=after, running=running)


async def recover(node: Node, count: int, timeout_s: float = 120) -> tuple[Outcome, float]:
    """Start the agent and wait until every pod runs and nothing is left to clean up (or the
    timeout); return what is then observed and how long it took."""
    reader = ProcessRuntime(node.root)
    t0 = time.monotonic()
    node.start(wait=False)
    while True:
        out = await observe(node, reader)
        if out.pods == count and out.clean:
            break
        if time.monotonic() - t0 > timeout_s:
            return out, time.monotonic() - t0
        await asyncio.sleep(0.1)
    took = time.monotonic() - t0
    # the agent's own view must agree (it has synced every pod): then look once more, so a
    # late restart or removal by the agent would show
    await asyncio.to_thread(
        wait_for, lambda: _all_running(node, count), max(1.0, timeout_s - took), "the agent's view"
    )
    return await observe(node, reader), took


def _all_running(node: Node, count: int) -> bool:
    try:
        items = node.get("/pods")["items"] or []
    except (OSError, AssertionError):
        return False
    statuses = [c for p in items for c in p.get("status", {}).get("containerStatuses", [])]
    return len(statuses) == count and all(
        "running" in c.get("state", {}) and c.get("restartCount", 0) == 0 for c in statuses
    )

"""Real cgroups for stats tests: a unique tree per test, processes started inside, cleaned up."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from pykubelet.stats import CgroupReader

BUSY = (
    "import sys\n"
    "b = bytearray(int(sys.argv[1]))\n"
    "for i in range(0, len(b), 4096): b[i] = 1\n"
    "print('ready', flush=True)\n"
    "while True: pass\n"
)
SLEEPY = (
    "import sys, time\n"
    "b = bytearray(int(sys.argv[1]))\n"
    "for i in range(0, len(b), 4096): b[i] = 1\n"
    "print('ready', flush=True)\n"
    "time.sleep(3600)\n"
)


@dataclass
class CgroupTree:
    """Creates ``<root>/<name>`` under every controller it needs (v1) or the unified mount."""

    reader: CgroupReader
    root: str = field(default_factory=lambda: f"pykubelet-stats-test-{secrets.token_hex(4)}")
    made: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _bases(self) -> list[str]:
        v1 = self.reader.mounts.v1
        bases = [v1[c] for c in ("cpu", "cpuacct", "memory", "pids") if c in v1]
        if not v1.get("memory") and self.reader.mounts.unified:
            bases.append(self.reader.mounts.unified)
        return sorted(set(bases))

    def make(self, rel: str) -> str:
        path = f"{self.root}/{rel}".strip("/")
        for base in self._bases():
            parts = path.split("/")
            for i in range(1, len(parts) + 1):
                d = os.path.join(base, *parts[:i])
                if not os.path.isdir(d):
                    os.mkdir(d)
                    self.made.append(d)
        return path

    def set_cpu_quota(self, rel: str, cores: float) -> None:
        cpu = self.reader.mounts.v1.get("cpu")
        if cpu:
            d = os.path.join(cpu, rel)
            with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
                f.write("100000")
            with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(int(100000 * cores)))
        else:
            with open(os.path.join(self.reader.mounts.unified, rel, "cpu.max"), "w") as f:
                f.write(f"{int(100000 * cores)} 100000")

    def start(self, rel: str, script: str, memory_bytes: int) -> subprocess.Popen[bytes]:
        return self.start_argv(rel, [sys.executable, "-c", script, str(memory_bytes)])

    def start_argv(self, rel: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside the cgroup; it must print ``ready`` when it is set up."""
        procs_files = [os.path.join(b, rel, "cgroup.procs") for b in self._bases()]

        def enter() -> None:
            for pf in procs_files:
                with open(pf, "w") as f:
                    f.write(str(os.getpid()))

        p = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            preexec_fn=enter,  # the child must be in the cgroup before it allocates or runs
        )
        self.procs.append(p)
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.strip() == b"ready", line
        return p

    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
            if p.stdout:
                p.stdout.close()
        for d in reversed(self.made):
            deadline = time.monotonic() + 5
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


@contextmanager
def cgroup_tree() -> Iterator[CgroupTree]:
    tree = CgroupTree(CgroupReader.from_host())
    try:
        yield tree
    finally:
        tree.cleanup()


def read_usage_ns(reader: CgroupReader, rel: str) -> int:
    usage = reader.read(rel).cpu_usage_ns
    assert usage is not None
    return usage


# A pod sandbox holder in a network namespace of its own: eth0 (10.99.0.1/24) paired with
# peer0; two pings to an absent neighbour push ARP requests out of eth0 into peer0.
NETNS_HOLDER = [
    "unshare",
    "--net",
    "/bin/sh",
    "-c",
    "ip link add eth0 type veth peer name peer0 && ip link set eth0 up && ip link set peer0 up"
    " && ip addr add 10.99.0.1/24 dev eth0"
    " && (/bin/busybox ping -c 2 -W 1 10.99.0.3 >/dev/null 2>&1; true)"
    " && echo ready && exec /bin/busybox sleep 3600",
]

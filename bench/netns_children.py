"""Shared by the network benches: network namespaces to attach (children of this process,
each `unshare -n` with `lo` up), CPU accounting, and cleanup by pid and bridge name."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path

__all__ = ["cpu", "start_namespaces", "stop"]


def cpu() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def start_namespaces(n: int) -> list[subprocess.Popen[bytes]]:
    procs = [
        subprocess.Popen(["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 600"])
        for _ in range(n)
    ]
    deadline = time.monotonic() + 30
    host = os.readlink("/proc/self/ns/net")
    for p in procs:  # wait until each child is in its own namespace with lo up (exec'd sleep)
        while True:
            try:
                ok = os.readlink(f"/proc/{p.pid}/ns/net") != host and (
                    Path(f"/proc/{p.pid}/comm").read_text().strip() == "sleep"
                )
            except OSError:
                ok = False
            if ok:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"namespace child {p.pid} did not come up")
            time.sleep(0.005)
    return procs


def stop(procs: list[subprocess.Popen[bytes]], bridge: str) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()
    subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)

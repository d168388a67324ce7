"""Give a node its own CPU for a benchmark, as on a real cluster.

On a cluster the API server, etcd and kubectl run on other machines than the node, so what
they do never delays the node's own work. On a small benchmark machine they share its cores,
and the node's steps then wait for a core now and then (a 2-core machine: kubectl starting
up, the API server proxying). ``split`` pins the node's process trees (all their threads,
and the children they start later inherit it) to the last CPU and everything else the
benchmark names (the control plane, and this process with the kubectl it starts) to the
others; ``share`` undoes it. Affinity only: no cgroup, nothing to clean up but the masks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["all_cpus", "descendants", "pin", "split_cpus"]


def all_cpus() -> set[int]:
    return set(os.sched_getaffinity(0)) | set(range(os.cpu_count() or 1))


def split_cpus() -> tuple[set[int], set[int]] | None:
    """(the node's CPUs, everyone else's), or None on a machine with a single CPU."""
    cpus = sorted(all_cpus())
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


def _parents() -> dict[int, int]:
    out = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        out[int(p.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def descendants(roots: Iterable[int]) -> set[int]:
    """``roots`` and every process below them."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += children.get(pid, [])
    return seen


def pin(roots: Iterable[int], cpus: set[int]) -> int:
    """Set the affinity of every thread of ``roots`` and their descendants; how many threads."""
    n = 0
    for pid in descendants(roots):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(ProcessLookupError):
                    os.sched_setaffinity(int(task.name), cpus)
                    n += 1
    return n

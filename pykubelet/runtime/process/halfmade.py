"""Sandboxes and containers an agent was killed in the middle of making.

Making one takes several steps (directory, cgroup, holder or shim process, record, network, /etc
files). A ``creating`` marker naming the cgroup is written first and removed last, so what a
dead agent left half made is known:

* a directory without its record (killed before the record was written): the processes in the
  marker's cgroup (a holder already launched) are killed, the cgroup and the directory removed
  when the next runtime starts (``sweep``);
* a sandbox record still marked (killed during the network set-up or the /etc files): that
  sandbox is not ready, so the pod layer stops and removes it as it does any dead sandbox
  (releasing its address) and makes a new one; its containers were never created.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path

from pykubelet.runtime.cgroups import CgroupLayout

__all__ = ["MARKER", "is_marked", "mark", "sweep", "unmark"]

log = logging.getLogger(__name__)

MARKER = "creating"


def mark(d: Path, cgroup: str) -> None:
    (d / MARKER).write_text(cgroup)


def unmark(d: Path) -> None:
    (d / MARKER).unlink(missing_ok=True)


def is_marked(d: Path) -> bool:
    return os.path.exists(d / MARKER)


def sweep(base: Path, record_file: str, cgroups: CgroupLayout | None) -> list[str]:
    """Remove what was left half made under ``base`` (``<id>/`` without ``record_file``);
    returns the ids removed. Blocking: run in a thread, before anything is being made."""
    removed: list[str] = []
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return removed
    for name in names:
        d = base / name
        if (d / record_file).exists() or not d.is_dir():
            continue
        cgroup = ""
        with contextlib.suppress(OSError):
            cgroup = (d / MARKER).read_text().strip()
        if cgroup and cgroups is not None and cgroups.usable:
            _remove_cgroup(cgroups, cgroup)
        shutil.rmtree(d, ignore_errors=True)
        removed.append(name)
        log.warning(
            "removed %s %s left half made by an agent that stopped while making it%s",
            base.name.rstrip("s"),
            name[:12],
            f" (and cgroup {cgroup})" if cgroup else "",
        )
    return removed


def _remove_cgroup(cgroups: CgroupLayout, cgroup: str) -> None:
    """Kill its processes, wait (bounded) until they are reaped, remove it, and its parent
    (the pod's cgroup) if nothing else is left in that."""
    deadline = time.monotonic() + 5.0
    while True:
        cgroups.kill_all(cgroup)
        if not cgroups.pids(cgroup) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    cgroups.remove(cgroup)
    parent = os.path.dirname(cgroup.rstrip("/"))
    if parent:
        for d in cgroups.dirs(parent):
            with contextlib.suppress(OSError):
                d.rmdir()  # refused while other sandboxes or containers are in it

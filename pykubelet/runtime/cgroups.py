"""Per-pod and per-container cgroups on v1, v2 and hybrid hosts (mounts from mountinfo).

The process runtime creates every cgroup with it; the CRI runtime only the pod's (for
``podPidsLimit``), under which containerd's runc creates the containers' own.

A cgroup path is runtime-relative (``pykubelet/pod<uid>/<cid>``) and the same under every
hierarchy we use: the v1 ``memory``, ``cpu``, ``cpuacct`` and ``pids`` controllers and the
cgroup2 tree (which on a hybrid host carries no controllers, only membership).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from pykubelet.runtime.types import LinuxResources

__all__ = ["CgroupLayout", "discover_cgroups", "is_oom_killed"]

_V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")


@dataclass(frozen=True, slots=True, kw_only=True)
class CgroupLayout:
    """Where the hierarchies are mounted: v1 controller → mount point, and the cgroup2 mount."""

    v1: tuple[tuple[str, str], ...] = ()
    v2: str = ""  # "" when there is no cgroup2 mount
    v2_controllers: tuple[str, ...] = ()  # enabled at the cgroup2 root (empty on hybrid hosts)

    @property
    def usable(self) -> bool:
        return bool(self.v1) or bool(self.v2)

    @property
    def version(self) -> str:
        if self.v1 and self.v2:
            return "hybrid"
        return "v1" if self.v1 else ("v2" if self.v2 else "none")

    def dirs(self, rel: str) -> list[Path]:
        """Every directory that represents ``rel`` (one per distinct mount)."""
        seen: set[str] = set()
        out: list[Path] = []
        for _name, mnt in self.v1:
            if mnt not in seen:
                seen.add(mnt)
                out.append(Path(mnt) / rel)
        if self.v2:
            out.append(Path(self.v2) / rel)
        return out

    def v1_dir(self, controller: str, rel: str) -> Path | None:
        for name, mnt in self.v1:
            if name == controller:
                return Path(mnt) / rel
        return None

    def create(self, rel: str) -> None:
        """Create ``rel`` (and its parents) in every hierarchy, enabling v2 controllers."""
        for d in self.dirs(rel):
            d.mkdir(parents=True, exist_ok=True)
        if self.v2 and self.v2_controllers:
            parts = Path(rel).parts
            # enable controllers for each ancestor's children, but never inside the leaf
            for i in range(len(parts)):
                parent = Path(self.v2, *parts[:i])
                ctl = " ".join("+" + c for c in self.v2_controllers)
                with contextlib.suppress(OSError):
                    (parent / "cgroup.subtree_control").write_text(ctl)

    def add_process(self, rel: str, pid: int) -> None:
        """Move ``pid`` into ``rel`` in every hierarchy (best effort: a process that already
        exited, or a hierarchy that refuses, is skipped)."""
        for f in self.procs_files(rel):
            with contextlib.suppress(OSError):
                Path(f).write_text(str(pid))

    def procs_files(self, rel: str) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs(rel)]

    def apply(self, rel: str, res: LinuxResources) -> None:
        """Write the limits; raises OSError if a controller refuses a value."""
        mem = self.v1_dir("memory", rel)
        cpu = self.v1_dir("cpu", rel)
        pids = self.v1_dir("pids", rel)
        v2 = Path(self.v2) / rel if self.v2 else None
        v2c = set(self.v2_controllers)
        if res.memory_limit_bytes:
            if mem is not None:
                (mem / "memory.limit_in_bytes").write_text(str(res.memory_limit_bytes))
                _write_if_exists(mem / "memory.memsw.limit_in_bytes", str(res.memory_limit_bytes))
            elif v2 is not None and "memory" in v2c:
                (v2 / "memory.max").write_text(str(res.memory_limit_bytes))
                _write_if_exists(v2 / "memory.swap.max", "0")
        if res.cpu_quota_us:
            period = res.cpu_period_us or 100_000
            if cpu is not None:
                (cpu / "cpu.cfs_period_us").write_text(str(period))
                (cpu / "cpu.cfs_quota_us").write_text(str(res.cpu_quota_us))
            elif v2 is not None and "cpu" in v2c:
                (v2 / "cpu.max").write_text(f"{res.cpu_quota_us} {period}")
        if res.cpu_shares:
            if cpu is not None:
                (cpu / "cpu.shares").write_text(str(max(2, res.cpu_shares)))
            elif v2 is not None and "cpu" in v2c:
                # the conversion runc uses from shares [2, 262144] to weight [1, 10000]
                weight = 1 + ((max(2, res.cpu_shares) - 2) * 9999) // 262142
                (v2 / "cpu.weight").write_text(str(weight))
        if res.pids_limit:
            if pids is not None:
                (pids / "pids.max").write_text(str(res.pids_limit))
            elif v2 is not None and "pids" in v2c:
                (v2 / "pids.max").write_text(str(res.pids_limit))

    def limit_pids(self, rel: str, limit: int) -> None:
        """Create ``rel`` with ``pids.max = limit`` (a pod cgroup: ``podPidsLimit``). Raises
        OSError when no hierarchy here has the pids controller: a limit is never dropped."""
        if self.v1_dir("pids", rel) is None and not (self.v2 and "pids" in self.v2_controllers):
            raise OSError(errno.ENOTSUP, "no cgroup hierarchy with the pids controller")
        self.create(rel)
        self.apply(rel, LinuxResources(pids_limit=limit))

    def pids(self, rel: str) -> set[int]:
        found: set[int] = set()
        for f in self.procs_files(rel):
            with contextlib.suppress(OSError, ValueError):
                found.update(int(x) for x in Path(f).read_text().split())
        return found

    def kill_all(self, rel: str) -> None:
        for pid in self.pids(rel):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self, rel: str) -> None:
        """Remove ``rel`` and its children, deepest first; busy cgroups are left in place."""
        for d in self.dirs(rel):
            if not d.is_dir():
                continue
            subdirs = sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
            for sub in [*subdirs, d]:
                try:
                    sub.rmdir()
                except OSError as e:
                    if e.errno not in (errno.ENOENT,):
                        pass


def _write_if_exists(path: Path, value: str) -> None:
    if path.exists():
        with contextlib.suppress(OSError):
            path.write_text(value)


def is_oom_killed(layout: CgroupLayout, rel: str) -> bool:
    """Whether the kernel's OOM killer killed a process of this cgroup."""
    mem = layout.v1_dir("memory", rel)
    candidates = []
    if mem is not None:
        candidates.append(mem / "memory.oom_control")
    if layout.v2:
        candidates.append(Path(layout.v2) / rel / "memory.events")
    for f in candidates:
        try:
            text = f.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                return True
    return False


def discover_cgroups(mountinfo: str | None = None) -> CgroupLayout:
    """Read ``/proc/self/mountinfo`` (or the given text) for cgroup mounts we can write to."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return CgroupLayout()
    v1: dict[str, str] = {}
    v2 = ""
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mnt = fields[4].replace("\\040", " ")
        fstype, super_opts = rfields[0], rfields[2].split(",")
        if fstype == "cgroup2" and not v2:
            v2 = mnt
        elif fstype == "cgroup":
            for c in _V1_CONTROLLERS:
                if c in super_opts and c not in v1:
                    v1[c] = mnt
    controllers: tuple[str, ...] = ()
    if v2:
        try:
            controllers = tuple(
                c
                for c in (Path(v2) / "cgroup.controllers").read_text().split()
                if c in ("memory", "cpu", "pids")
            )
        except OSError:
            controllers = ()
    writable = os.geteuid() == 0
    if not writable:
        return CgroupLayout()
    return CgroupLayout(v1=tuple(sorted(v1.items())), v2=v2, v2_controllers=controllers)

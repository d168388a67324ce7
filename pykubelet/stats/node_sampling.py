"""Blocking readers for node-wide and per-process figures (/proc, statvfs). Worker threads only."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pykubelet.stats.cgroups import read_text
from pykubelet.stats.errors import StatsReadError
from pykubelet.stats.fs import statvfs
from pykubelet.stats.proc_parse import (
    USER_HZ,
    ProcessStat,
    parse_meminfo,
    parse_net_dev,
    parse_pid_stat,
    parse_proc_stat_cpu,
    parse_uptime,
)
from pykubelet.stats.types import FsSample, InterfaceSample, MemorySample, NetworkSample

__all__ = ["NodeReadings", "ProcReader", "fs_sample"]

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeReadings:
    boot_time: float
    cpu_busy_ns: int
    cpu_user_ns: int
    cpu_system_ns: int
    memory: MemorySample
    memory_capacity_bytes: int
    num_cores: int
    max_pid: int | None
    cur_proc: int | None
    machine_id: str
    boot_id: str
    system_uuid: str


class ProcReader:
    """Reads under ``proc_root`` (``/proc``); tests may point it at a captured tree."""

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root
        self._boot_time: float | None = None
        self._ids: tuple[str, str, str] | None = None

    def _path(self, *parts: str) -> str:
        return os.path.join(self.proc_root, *parts)

    def boot_time(self, now: float) -> float:
        if self._boot_time is None:
            text = read_text(self._path("uptime")) or "0"
            # Second precision, as metav1.Time: stable across reads despite clock jitter.
            self._boot_time = float(int(now - parse_uptime(text)))
        return self._boot_time

    def node(self, now: float) -> NodeReadings:
        busy, user, system = parse_proc_stat_cpu(read_text(self._path("stat")) or "")
        mi = parse_meminfo(read_text(self._path("meminfo")) or "")
        total = mi["MemTotal"]
        usage = total - mi.get("MemFree", 0)
        working_set = max(0, usage - mi.get("Inactive(file)", 0))
        faults = _vmstat(read_text(self._path("vmstat")) or "")
        memory = MemorySample(
            time=now,
            usage_bytes=usage,
            working_set_bytes=working_set,
            rss_bytes=mi.get("AnonPages", 0),
            cache_bytes=mi.get("Cached", 0),
            page_faults=faults.get("pgfault", 0),
            major_page_faults=faults.get("pgmajfault", 0),
            limit_bytes=total,
        )
        pid_max = read_text(self._path("sys", "kernel", "pid_max"))
        loadavg = read_text(self._path("loadavg"))
        cur_proc = None
        if loadavg:
            parts = loadavg.split()
            if len(parts) >= 4 and "/" in parts[3]:
                cur_proc = int(parts[3].split("/")[1])
        if self._ids is None:
            self._ids = (
                _first_line("/etc/machine-id"),
                _first_line(self._path("sys", "kernel", "random", "boot_id")),
                _first_line("/sys/class/dmi/id/product_uuid"),
            )
        return NodeReadings(
            machine_id=self._ids[0],
            boot_id=self._ids[1],
            system_uuid=self._ids[2],
            boot_time=self.boot_time(now),
            cpu_busy_ns=busy,
            cpu_user_ns=user,
            cpu_system_ns=system,
            memory=memory,
            memory_capacity_bytes=total,
            num_cores=os.cpu_count() or 1,
            max_pid=int(pid_max) if pid_max and pid_max.strip().isdigit() else None,
            cur_proc=cur_proc,
        )

    def process(self, pid: int | str) -> ProcessStat | None:
        text = read_text(self._path(str(pid), "stat"))
        return None if text is None else parse_pid_stat(text)

    def process_memory(self, pid: int | str, now: float) -> MemorySample | None:
        st = self.process(pid)
        if st is None:
            return None
        rss = st.rss_pages * _PAGE
        return MemorySample(time=now, usage_bytes=rss, working_set_bytes=rss, rss_bytes=rss)

    def process_start_time(self, pid: int | str, now: float) -> float | None:
        st = self.process(pid)
        if st is None:
            return None
        return self.boot_time(now) + st.start_ticks / USER_HZ

    def network(
        self, pid: int | str, now: float, *, find_default: bool = False
    ) -> NetworkSample | None:
        """Counters of the network namespace ``pid`` lives in, loopback left out.

        The default interface is ``eth0`` (a pod's, by CNI convention) unless ``find_default``
        asks for the default route's interface (the node's)."""
        text = read_text(self._path(str(pid), "net", "dev"))
        if text is None:
            return None
        ifaces = tuple(i for i in parse_net_dev(text) if i.name != "lo")
        route = (read_text(self._path(str(pid), "net", "route")) or "") if find_default else ""
        return NetworkSample(
            time=now, interfaces=ifaces, default_interface=_default_iface(route, ifaces)
        )


def _first_line(path: str) -> str:
    try:
        text = read_text(path)
    except StatsReadError:  # product_uuid is root-only
        return ""
    return (text or "").strip()


def _vmstat(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if k in ("pgfault", "pgmajfault") and v.strip().isdigit():
            out[k] = int(v)
    return out


def _default_iface(route_text: str, ifaces: tuple[InterfaceSample, ...]) -> str:
    """The interface of the default route; else eth0 (upstream's name); else the first one."""
    for line in route_text.splitlines()[1:]:
        parts = line.split()
        if len(parts) > 2 and parts[1] == "00000000":
            return parts[0]
    names = [i.name for i in ifaces]
    if "eth0" in names or not names:
        return "eth0"
    return names[0]


def fs_sample(path: str, now: float, used_bytes: int | None = None) -> FsSample | None:
    """Capacity and inode figures of the filesystem under ``path`` (used = capacity - free)."""
    cap = statvfs(path)
    if cap is None:
        return None
    return FsSample(
        time=now,
        capacity_bytes=cap.capacity_bytes,
        available_bytes=cap.available_bytes,
        used_bytes=cap.capacity_bytes - cap.free_bytes if used_bytes is None else used_bytes,
        inodes=cap.inodes,
        inodes_free=cap.inodes_free,
        inodes_used=cap.inodes - cap.inodes_free,
    )

"""Pure parsers for the /proc files the node figures come from; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass

from pykubelet.stats.errors import CgroupParseError
from pykubelet.stats.types import InterfaceSample

__all__ = [
    "ProcessStat",
    "parse_meminfo",
    "parse_net_dev",
    "parse_pid_stat",
    "parse_proc_stat_cpu",
    "parse_uptime",
]

USER_HZ = 100  # the kernel's fixed clock-tick unit for /proc/stat and /proc/<pid>/stat


def parse_proc_stat_cpu(text: str) -> tuple[int, int, int]:
    """/proc/stat → (busy_ns, user_ns, system_ns) summed over every CPU.

    Busy = user + nice + system + irq + softirq + steal (idle and iowait excluded); guest time
    is already inside user/nice.
    """
    for line in text.splitlines():
        if line.startswith("cpu "):
            parts = line.split()[1:]
            try:
                v = [int(x) for x in parts] + [0] * (8 - len(parts))
            except ValueError:
                raise CgroupParseError(f"/proc/stat: bad cpu line {line!r}") from None
            user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
            tick_ns = 1_000_000_000 // USER_HZ
            busy = user + nice + system + irq + softirq + steal
            return busy * tick_ns, (user + nice) * tick_ns, system * tick_ns
    raise CgroupParseError("/proc/stat: no aggregate cpu line")


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo → {field: bytes} (kB values converted; page counts kept)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if not parts:
            continue
        try:
            n = int(parts[0])
        except ValueError:
            raise CgroupParseError(f"/proc/meminfo: bad value in {line!r}") from None
        out[key.strip()] = n * 1024 if len(parts) > 1 and parts[1] == "kB" else n
    if "MemTotal" not in out:
        raise CgroupParseError("/proc/meminfo: no MemTotal")
    return out


def parse_uptime(text: str) -> float:
    """/proc/uptime → seconds since boot."""
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        raise CgroupParseError(f"/proc/uptime: unexpected {text.strip()!r}") from None


def parse_net_dev(text: str) -> tuple[InterfaceSample, ...]:
    """/proc/<pid>/net/dev → every interface's counters, ``lo`` included (callers filter)."""
    out: list[InterfaceSample] = []
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        v = rest.split()
        if len(v) < 16:
            raise CgroupParseError(f"net/dev: short line {line!r}")
        try:
            n = [int(x) for x in v[:16]]
        except ValueError:
            raise CgroupParseError(f"net/dev: not an integer in {line!r}") from None
        out.append(
            InterfaceSample(
                name=name.strip(),
                rx_bytes=n[0],
                rx_packets=n[1],
                rx_errors=n[2],
                rx_dropped=n[3],
                tx_bytes=n[8],
                tx_packets=n[9],
                tx_errors=n[10],
                tx_dropped=n[11],
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessStat:
    user_ns: int
    system_ns: int
    start_ticks: int  # since boot, in USER_HZ ticks
    rss_pages: int


def parse_pid_stat(text: str) -> ProcessStat:
    """/proc/<pid>/stat (the comm field may hold spaces and parentheses)."""
    close = text.rfind(")")
    if close < 0:
        raise CgroupParseError("/proc/<pid>/stat: no comm field")
    fields = text[close + 2 :].split()
    try:
        # fields[0] is state (field 3); utime is field 14, stime 15, starttime 22, rss 24.
        utime, stime = int(fields[11]), int(fields[12])
        start, rss = int(fields[19]), int(fields[21])
    except (ValueError, IndexError):
        raise CgroupParseError("/proc/<pid>/stat: unexpected layout") from None
    tick_ns = 1_000_000_000 // USER_HZ
    return ProcessStat(
        user_ns=utime * tick_ns, system_ns=stime * tick_ns, start_ticks=start, rss_pages=rss
    )

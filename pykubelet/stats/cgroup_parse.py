"""Pure parsers for cgroup v1 / v2 files and /proc/self/mountinfo; no I/O here.

Each takes the file's text and returns plain values, so tests feed captured contents from v1,
v2 and hybrid hosts. Malformed input raises ``CgroupParseError`` naming the file kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pykubelet.stats.errors import CgroupParseError

__all__ = [
    "CgroupMounts",
    "MemoryStat",
    "parse_cpu_stat_v2",
    "parse_flat_keyed",
    "parse_limit",
    "parse_memory_stat",
    "parse_mountinfo",
    "parse_proc_cgroup",
    "parse_single_int",
]

# cgroup v1 reports "no limit" as a huge page-aligned number rather than "max".
_V1_UNLIMITED_THRESHOLD = 1 << 62
_NOT_CONTROLLERS = frozenset({"rw", "ro", "xattr", "clone_children", "noprefix", "nsdelegate"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CgroupMounts:
    """Where each hierarchy lives. ``v1`` maps a controller to its mount point."""

    v1: dict[str, str] = field(default_factory=dict)
    unified: str = ""  # the cgroup2 mount, "" if none


def _unescape_mount(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    out = []
    i = 0
    while i < len(path):
        if path[i] == "\\" and i + 4 <= len(path) and path[i + 1 : i + 4].isdigit():
            out.append(chr(int(path[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> CgroupMounts:
    """Find cgroup v1 controllers and the cgroup2 mount in /proc/self/mountinfo."""
    v1: dict[str, str] = {}
    unified = ""
    for line in text.splitlines():
        if not line.strip():
            continue
        left, sep, right = line.partition(" - ")
        if not sep:
            raise CgroupParseError(f"mountinfo: no separator in line {line!r}")
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 3:
            raise CgroupParseError(f"mountinfo: short line {line!r}")
        fstype, options = rfields[0], rfields[2]
        mount_point = _unescape_mount(fields[4])
        if fstype == "cgroup2":
            # The first cgroup2 mount wins; later ones are usually bind mounts of it.
            unified = unified or mount_point
        elif fstype == "cgroup":
            for opt in options.split(","):
                if opt in _NOT_CONTROLLERS or ("=" in opt and not opt.startswith("name=")):
                    continue
                v1.setdefault(opt, mount_point)
    return CgroupMounts(v1=v1, unified=unified)


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup → {controller: path}; the v2 entry is keyed ``""``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line:
            continue
        parts = line.split(":", 2)
        if len(parts) != 3:
            raise CgroupParseError(f"cgroup: malformed line {line!r}")
        _, controllers, path = parts
        if not controllers:
            out[""] = path
        for c in controllers.split(","):
            if c:
                out[c] = path
    return out


def parse_flat_keyed(text: str, kind: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, cpuacct.stat) → {key: int}."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise CgroupParseError(f"{kind}: malformed line {line!r}")
        try:
            out[parts[0]] = int(parts[1])
        except ValueError:
            raise CgroupParseError(f"{kind}: not an integer in {line!r}") from None
    return out


def parse_single_int(text: str, kind: str) -> int:
    """A file holding one integer (cpuacct.usage, memory.current, pids.current)."""
    try:
        return int(text.strip())
    except ValueError:
        raise CgroupParseError(f"{kind}: expected an integer, got {text.strip()!r}") from None


def parse_limit(text: str, kind: str) -> int | None:
    """memory.max / memory.limit_in_bytes → bytes, or None when unlimited."""
    value = text.strip()
    if value == "max":
        return None
    n = parse_single_int(value, kind)
    return None if n >= _V1_UNLIMITED_THRESHOLD else n


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryStat:
    """The memory.stat fields the stats need, normalised across v1 and v2."""

    inactive_file: int
    rss: int
    cache: int
    pgfault: int
    pgmajfault: int


def parse_memory_stat(text: str, *, v2: bool | None = None) -> MemoryStat:
    """memory.stat of either version. v1 uses the hierarchical ``total_*`` counters.

    ``v2`` None guesses from the keys (v2 has ``anon``, v1 has ``rss``).
    """
    kv = parse_flat_keyed(text, "memory.stat")
    if v2 is None:
        v2 = "anon" in kv and "rss" not in kv
    if v2:
        return MemoryStat(
            inactive_file=kv.get("inactive_file", 0),
            rss=kv.get("anon", 0),
            cache=kv.get("file", 0),
            pgfault=kv.get("pgfault", 0),
            pgmajfault=kv.get("pgmajfault", 0),
        )

    def pick(name: str) -> int:
        return kv.get(f"total_{name}", kv.get(name, 0))

    return MemoryStat(
        inactive_file=pick("inactive_file"),
        rss=pick("rss"),
        cache=pick("cache"),
        pgfault=pick("pgfault"),
        pgmajfault=pick("pgmajfault"),
    )


def parse_cpu_stat_v2(text: str) -> tuple[int, int, int]:
    """cgroup v2 cpu.stat → (usage_ns, user_ns, system_ns)."""
    kv = parse_flat_keyed(text, "cpu.stat")
    if "usage_usec" not in kv:
        raise CgroupParseError("cpu.stat: no usage_usec")
    return (
        kv["usage_usec"] * 1000,
        kv.get("user_usec", 0) * 1000,
        kv.get("system_usec", 0) * 1000,
    )

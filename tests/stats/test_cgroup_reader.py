"""CgroupReader over captured v2 and hybrid trees (files laid out as the kernel does) and over
the host's real hierarchy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pykubelet.stats import CgroupGone, CgroupReader, StatsReadError
from pykubelet.stats.cgroup_parse import CgroupMounts
from tests.prereq import require_root
from tests.stats.cgroup_env import SLEEPY, cgroup_tree

V2_FILES = {
    "cpu.stat": "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n",
    "memory.current": "73400320\n",
    "memory.stat": (
        "anon 52269056\nfile 1220608\ninactive_file 3145728\npgfault 13506\npgmajfault 1\n"
    ),
    "memory.max": "max\n",
    "pids.current": "3\n",
}


def _tree(root: Path, rel: str, files: dict[str, str]) -> None:
    d = root / rel
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)


def test_v2_tree(tmp_path: Path) -> None:
    _tree(tmp_path, "kp/pod1/c1", V2_FILES)
    reader = CgroupReader(CgroupMounts(unified=str(tmp_path)), frozenset({"cpu", "memory", "pids"}))
    u = reader.read("/kp/pod1/c1")
    assert (u.cpu_usage_ns, u.cpu_user_ns, u.cpu_system_ns) == (1_500_000_000, 10**9, 5 * 10**8)
    assert u.memory_usage_bytes == 73400320
    assert u.memory_working_set_bytes == 73400320 - 3145728
    assert (u.memory_rss_bytes, u.memory_cache_bytes) == (52269056, 1220608)
    assert (u.page_faults, u.major_page_faults, u.pids) == (13506, 1, 3)
    assert u.memory_limit_bytes is None
    assert reader.describe()["memory"] == f"v2:{tmp_path}"
    with pytest.raises(CgroupGone):
        reader.read("kp/pod1/gone")


def test_hybrid_prefers_v1_and_falls_back_to_unified(tmp_path: Path) -> None:
    v1_mem, v1_cpu, unified = tmp_path / "memory", tmp_path / "cpuacct", tmp_path / "unified"
    _tree(
        v1_mem,
        "kp/c",
        {
            "memory.usage_in_bytes": "1000000\n",
            "memory.stat": "rss 10\ntotal_rss 600000\ntotal_cache 300000\n"
            "total_inactive_file 250000\ntotal_pgfault 9\ntotal_pgmajfault 1\n",
            "memory.limit_in_bytes": "2000000\n",
        },
    )
    _tree(v1_cpu, "kp/c", {"cpuacct.usage": "42\n", "cpuacct.stat": "user 3\nsystem 1\n"})
    _tree(unified, "kp/c", {"pids.current": "5\n", "cpu.stat": "usage_usec 1\n"})
    mounts = CgroupMounts(v1={"memory": str(v1_mem), "cpuacct": str(v1_cpu)}, unified=str(unified))
    reader = CgroupReader(mounts, frozenset({"pids"}))
    u = reader.read("kp/c")
    assert u.cpu_usage_ns == 42  # v1 cpuacct wins over the unified cpu.stat
    assert (u.cpu_user_ns, u.cpu_system_ns) == (30_000_000, 10_000_000)
    assert (u.memory_usage_bytes, u.memory_working_set_bytes) == (1000000, 750000)
    assert (u.memory_rss_bytes, u.memory_limit_bytes, u.pids) == (600000, 2000000, 5)


def test_unreadable_file_is_a_read_error_naming_the_path(tmp_path: Path) -> None:
    _tree(tmp_path, "c", V2_FILES)
    os.remove(tmp_path / "c" / "memory.current")
    (tmp_path / "c" / "memory.current").mkdir()  # reading a directory: EISDIR, not "gone"
    reader = CgroupReader(CgroupMounts(unified=str(tmp_path)), frozenset({"memory"}))
    with pytest.raises(StatsReadError, match=r"memory\.current"):
        reader.read("c")


def test_host_hierarchy_matches_proc_self_cgroup() -> None:
    require_root()
    with cgroup_tree() as tree:
        rel = tree.make("c")
        p = tree.start(rel, SLEEPY, 8 * 1024 * 1024)
        with open(f"/proc/{p.pid}/cgroup") as f:
            text = f.read()
        assert f"/{rel}\n" in text
        u = tree.reader.read(rel)
        assert u.memory_working_set_bytes is not None
        assert u.memory_working_set_bytes >= 8 * 1024 * 1024
        assert u.cpu_usage_ns and u.pids == 1


async def test_one_unreadable_cgroup_does_not_fail_the_pass(tmp_path: Path) -> None:
    from pykubelet.stats import StatsCollector, StatsConfig
    from tests.stats.fake_source import ListingSource

    cg_root = tmp_path / "cg"
    _tree(cg_root, "kp/podu/good", V2_FILES)
    _tree(cg_root, "kp/podu/bad", {**V2_FILES, "memory.stat": "garbage here too\n"})
    reader = CgroupReader(CgroupMounts(unified=str(cg_root)), frozenset({"cpu", "memory", "pids"}))
    source = ListingSource()
    source.add_pod(
        name="p", uid="u", cgroup_parent="kp/podu",
        containers=[("good", "kp/podu/good", 0), ("bad", "kp/podu/bad", 0)],
    )  # fmt: skip
    cfg = StatsConfig(node_name="n1", root_dir=str(tmp_path))
    snap = await StatsCollector(cfg, source, cgroups=reader).collect_once()
    by_name = {c.name: c for c in snap.pods[0].containers}
    assert by_name["good"].memory is not None
    assert by_name["good"].memory.working_set_bytes == 73400320 - 3145728
    assert by_name["bad"].memory is None and by_name["bad"].cpu is None
    assert not snap.error

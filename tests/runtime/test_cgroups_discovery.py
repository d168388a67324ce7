"""cgroup mount discovery from mountinfo: v1, v2 and hybrid hosts (pure parsing)."""

from __future__ import annotations

import os

import pytest

from pykubelet.runtime.cgroups import discover_cgroups

V1 = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
"""
HYBRID = V1 + "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n"


@pytest.fixture(autouse=True)
def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("discovery reports no writable cgroups without root (tested by the plain test)")


def test_v1_comounted_controllers_share_one_directory() -> None:
    layout = discover_cgroups(V1)
    assert layout.version == "v1"
    assert dict(layout.v1) == {
        "cpu": "/sys/fs/cgroup/cpu,cpuacct",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        "memory": "/sys/fs/cgroup/memory",
        "pids": "/sys/fs/cgroup/pids",
    }
    assert [str(d) for d in layout.dirs("k/pod1")] == [
        "/sys/fs/cgroup/cpu,cpuacct/k/pod1",
        "/sys/fs/cgroup/memory/k/pod1",
        "/sys/fs/cgroup/pids/k/pod1",
    ]


def test_hybrid_adds_the_unified_tree_for_membership() -> None:
    layout = discover_cgroups(HYBRID)
    assert layout.version == "hybrid" and layout.v2 == "/sys/fs/cgroup/unified"
    assert str(layout.dirs("k")[-1]) == "/sys/fs/cgroup/unified/k"


def test_v2_only() -> None:
    layout = discover_cgroups(V2)
    assert layout.version == "v2" and layout.v1 == () and layout.v2 == "/sys/fs/cgroup"
    assert layout.procs_files("k/c") == ["/sys/fs/cgroup/k/c/cgroup.procs"]

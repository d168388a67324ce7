"""Pure parsers on captured kernel files from v1, v2 and hybrid hosts."""

from __future__ import annotations

import pytest

from pykubelet.stats.cgroup_parse import (
    parse_cpu_stat_v2,
    parse_limit,
    parse_memory_stat,
    parse_mountinfo,
    parse_proc_cgroup,
    parse_single_int,
)
from pykubelet.stats.errors import CgroupParseError
from pykubelet.stats.proc_parse import (
    parse_meminfo,
    parse_net_dev,
    parse_pid_stat,
    parse_proc_stat_cpu,
    parse_uptime,
)

HYBRID_MOUNTINFO = """\
22 1 0:21 / / rw,relatime - overlay overlay rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""

V2_MOUNTINFO = """\
25 1 0:23 / / rw - ext4 /dev/sda1 rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""

V1_MEMORY_STAT = """\
cache 1081344
rss 52572160
rss_huge 0
mapped_file 0
pgfault 13413
pgmajfault 2
inactive_file 540672
total_cache 2162688
total_rss 105144320
total_pgfault 26826
total_pgmajfault 4
total_inactive_file 1081344
"""

V2_MEMORY_STAT = """\
anon 52269056
file 1220608
kernel_stack 16384
inactive_anon 52183040
active_anon 4096
inactive_file 1089536
active_file 131072
pgfault 13506
pgmajfault 1
"""


def test_mountinfo_hybrid_finds_v1_controllers_and_unified() -> None:
    m = parse_mountinfo(HYBRID_MOUNTINFO)
    assert m.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert m.v1["cpu"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert m.v1["memory"] == "/sys/fs/cgroup/memory"
    assert m.v1["pids"] == "/sys/fs/cgroup/pids"
    assert m.v1["name=systemd"] == "/sys/fs/cgroup/systemd"
    assert "xattr" not in m.v1 and "rw" not in m.v1
    assert m.unified == "/sys/fs/cgroup/unified"


def test_mountinfo_pure_v2() -> None:
    m = parse_mountinfo(V2_MOUNTINFO)
    assert m.v1 == {}
    assert m.unified == "/sys/fs/cgroup"


def test_mountinfo_unescapes_octal_and_rejects_garbage() -> None:
    line = "41 31 0:38 / /sys/fs/cgroup/my\\040dir rw - cgroup2 cgroup2 rw\n"
    assert parse_mountinfo(line).unified == "/sys/fs/cgroup/my dir"
    with pytest.raises(CgroupParseError, match="mountinfo"):
        parse_mountinfo("no separator here\n")


def test_memory_stat_v1_uses_hierarchical_totals() -> None:
    s = parse_memory_stat(V1_MEMORY_STAT)
    assert (s.inactive_file, s.rss, s.cache) == (1081344, 105144320, 2162688)
    assert (s.pgfault, s.pgmajfault) == (26826, 4)


def test_memory_stat_v2_uses_anon_and_file() -> None:
    s = parse_memory_stat(V2_MEMORY_STAT)
    assert (s.inactive_file, s.rss, s.cache) == (1089536, 52269056, 1220608)
    assert (s.pgfault, s.pgmajfault) == (13506, 1)


def test_memory_stat_rejects_malformed() -> None:
    with pytest.raises(CgroupParseError, match=r"memory\.stat"):
        parse_memory_stat("rss twelve\n")


def test_cpu_stat_v2_is_converted_to_ns() -> None:
    text = "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 0\n"
    assert parse_cpu_stat_v2(text) == (2_500_000, 2_000_000, 500_000)
    with pytest.raises(CgroupParseError, match="usage_usec"):
        parse_cpu_stat_v2("user_usec 1\n")


def test_limits_v1_unlimited_v2_max_and_numbers() -> None:
    assert parse_limit("9223372036854771712\n", "memory.limit_in_bytes") is None
    assert parse_limit("max\n", "memory.max") is None
    assert parse_limit("104857600\n", "memory.max") == 104857600
    assert parse_single_int("17\n", "pids.current") == 17
    with pytest.raises(CgroupParseError, match=r"pids\.current"):
        parse_single_int("", "pids.current")


def test_proc_cgroup_hybrid() -> None:
    text = "4:memory:/pykubelet/podx\n2:cpu,cpuacct:/pykubelet/podx\n0::/init.scope\n"
    assert parse_proc_cgroup(text) == {
        "memory": "/pykubelet/podx",
        "cpu": "/pykubelet/podx",
        "cpuacct": "/pykubelet/podx",
        "": "/init.scope",
    }


def test_proc_stat_cpu_sums_busy_ticks() -> None:
    text = "cpu  100 5 50 1000 20 1 2 3 0 0\ncpu0 50 2 25 500 10 0 1 1 0 0\n"
    busy, user, system = parse_proc_stat_cpu(text)
    assert busy == (100 + 5 + 50 + 1 + 2 + 3) * 10_000_000
    assert user == 105 * 10_000_000 and system == 50 * 10_000_000


def test_meminfo_uptime_pid_stat() -> None:
    mi = parse_meminfo("MemTotal:       16384 kB\nMemFree:  1024 kB\nHugePages_Total: 0\n")
    assert mi["MemTotal"] == 16384 * 1024 and mi["HugePages_Total"] == 0
    assert parse_uptime("350.5 700.1\n") == 350.5
    stat = (
        "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194304 100 0 0 0 7 3 0 0 20 0 1 0 4242 1000 25 18"
    )
    st = parse_pid_stat(stat)
    assert (st.user_ns, st.system_ns) == (70_000_000, 30_000_000)
    assert (st.start_ticks, st.rss_pages) == (4242, 25)


def test_net_dev() -> None:
    text = (
        "Inter-|   Receive                            |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes packets errs drop"
        " fifo colls carrier compressed\n"
        "    lo:    100       2    0    0    0     0          0         0      100       2    0"
        "    0    0     0       0          0\n"
        "  eth0: 123456     789    1    2    0     0          0         0    65432     321    3"
        "    4    0     0       0          0\n"
    )
    lo, eth0 = parse_net_dev(text)
    assert lo.name == "lo"
    assert (eth0.name, eth0.rx_bytes, eth0.rx_packets, eth0.rx_errors, eth0.rx_dropped) == (
        "eth0",
        123456,
        789,
        1,
        2,
    )
    assert (eth0.tx_bytes, eth0.tx_packets, eth0.tx_errors, eth0.tx_dropped) == (65432, 321, 3, 4)

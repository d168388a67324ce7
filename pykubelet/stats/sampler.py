"""The thread side of housekeeping: one blocking pass from a runtime listing to a ``Snapshot``.

Keeps what must survive between passes: the previous CPU counters (rates) and the directory-use
cache. Only ever called from one worker thread at a time (the collector serialises passes).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pykubelet.api import Pod
from pykubelet.core.clock import Clock
from pykubelet.runtime.types import ContainerState, ContainerStatus, SandboxStatus
from pykubelet.stats.cgroups import CgroupReader, CgroupUsage
from pykubelet.stats.errors import CgroupGone, CgroupParseError, StatsReadError
from pykubelet.stats.fs import DirUsageCache
from pykubelet.stats.node_sampling import ProcReader, fs_sample
from pykubelet.stats.source import StatsConfig
from pykubelet.stats.types import (
    ContainerSample,
    CpuSample,
    FsSample,
    MemorySample,
    NodeSample,
    PodSample,
    Snapshot,
    VolumeSample,
)
from pykubelet.stats.volumes import pod_volume_samples, sum_fs

__all__ = ["Listing", "Sampler"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    """What the runtime and pod layer said at the start of a pass."""

    sandboxes: tuple[SandboxStatus, ...]  # one per pod
    containers: Mapping[str, tuple[ContainerStatus, ...]]  # by sandbox id, running only
    pods: Mapping[str, Pod]  # by uid


class Sampler:
    def __init__(
        self,
        config: StatsConfig,
        clock: Clock,
        *,
        cgroups: CgroupReader | None = None,
        proc: ProcReader | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._cgroups = cgroups
        self._proc = proc or ProcReader(config.proc_root)
        self._dirs = DirUsageCache(config.fs_cache_ttl_s)
        self._prev_cpu: dict[str, tuple[float, int]] = {}
        self._dirs_wanted: set[str] = set()
        self._root_fs: FsSample | None = None
        self.cpu_s = 0.0  # CPU this sampler's thread spent, for the benchmark

    def sample(self, listing: Listing) -> Snapshot:
        """One pass over the node and every listed pod. Blocking: call from a worker thread."""
        t0 = time.thread_time()
        self._dirs_wanted = set()
        self._root_fs = fs_sample(self.config.root_dir, self._clock.now())  # once per pass
        if self._cgroups is None:
            self._cgroups = CgroupReader.from_host()
        mono = self._clock.monotonic()
        now = self._clock.now()
        seen: set[str] = set()
        node = self._sample_node(now, mono, seen)
        pods = tuple(self._sample_pod(sb, listing, now, mono, seen) for sb in listing.sandboxes)
        self._prev_cpu = {k: v for k, v in self._prev_cpu.items() if k in seen}
        self._dirs.retain(self._dirs_wanted)
        self.cpu_s += time.thread_time() - t0
        return Snapshot(time=now, node=node, pods=pods)

    def _cpu(
        self,
        key: str,
        now: float,
        mono: float,
        usage: int,
        user: int | None,
        system: int | None,
        seen: set[str],
    ) -> CpuSample:
        seen.add(key)
        rate = None
        prev = self._prev_cpu.get(key)
        if prev is not None and mono > prev[0] and usage >= prev[1]:
            rate = int((usage - prev[1]) / (mono - prev[0]))
        self._prev_cpu[key] = (mono, usage)
        return CpuSample(
            time=now, usage_core_ns=usage, usage_nano_cores=rate, user_ns=user, system_ns=system
        )

    def _from_cgroup(
        self, key: str, path: str, now: float, mono: float, seen: set[str]
    ) -> tuple[CpuSample | None, MemorySample | None, int | None] | None:
        assert self._cgroups is not None
        try:
            u: CgroupUsage = self._cgroups.read(path)
        except CgroupGone:
            return None
        except (StatsReadError, CgroupParseError) as e:
            # One unreadable cgroup costs that container its figures, not the whole pass.
            log.warning("stats: cgroup %s unreadable: %s", path, e)
            return None
        cpu = None
        if u.cpu_usage_ns is not None:
            cpu = self._cpu(key, now, mono, u.cpu_usage_ns, u.cpu_user_ns, u.cpu_system_ns, seen)
        mem = None
        if u.memory_usage_bytes is not None and u.memory_working_set_bytes is not None:
            mem = MemorySample(
                time=now,
                usage_bytes=u.memory_usage_bytes,
                working_set_bytes=u.memory_working_set_bytes,
                rss_bytes=u.memory_rss_bytes,
                cache_bytes=u.memory_cache_bytes,
                page_faults=u.page_faults,
                major_page_faults=u.major_page_faults,
                limit_bytes=u.memory_limit_bytes,
            )
        return cpu, mem, u.pids

    def _from_process(
        self, key: str, pid: int, now: float, mono: float, seen: set[str]
    ) -> tuple[CpuSample | None, MemorySample | None, int | None] | None:
        try:
            st = self._proc.process(pid)
        except (StatsReadError, CgroupParseError) as e:
            log.warning("stats: process %d unreadable: %s", pid, e)
            return None
        if st is None:
            return None
        cpu = self._cpu(key, now, mono, st.user_ns + st.system_ns, st.user_ns, st.system_ns, seen)
        return cpu, self._proc.process_memory(pid, now), None

    def _sample_node(self, now: float, mono: float, seen: set[str]) -> NodeSample:
        r = self._proc.node(now)
        cfg = self.config
        system: list[ContainerSample] = []
        own = self._from_process("sys/kubelet", os.getpid(), now, mono, seen)
        if own is not None:
            start = self._proc.process_start_time(os.getpid(), now) or r.boot_time
            system.append(
                ContainerSample(name="kubelet", start_time=start, cpu=own[0], memory=own[1])
            )
        for name, path in (("pods", cfg.pods_cgroup), ("runtime", cfg.runtime_cgroup)):
            if not path:
                continue
            got = self._from_cgroup(f"sys/{name}", path, now, mono, seen)
            if got is not None:
                system.append(
                    ContainerSample(
                        name=name,
                        start_time=r.boot_time,
                        cgroup_path=path,
                        cpu=got[0],
                        memory=got[1],
                        pids=got[2],
                    )
                )
        image_dir = cfg.image_fs_dir or cfg.root_dir
        image_used = None
        if cfg.image_fs_dir:
            self._dirs_wanted.add(image_dir)
            du = self._dirs.get(image_dir, mono)
            image_used = du.used_bytes if du else None
        return NodeSample(
            node_name=cfg.node_name,
            boot_time=r.boot_time,
            cpu=self._cpu("node", now, mono, r.cpu_busy_ns, r.cpu_user_ns, r.cpu_system_ns, seen),
            memory=r.memory,
            network=self._proc.network("self", now, find_default=True),
            fs=fs_sample(cfg.root_dir, now),
            image_fs=fs_sample(image_dir, now, image_used),
            system_containers=tuple(system),
            num_cores=r.num_cores,
            memory_capacity_bytes=r.memory_capacity_bytes,
            max_pid=r.max_pid,
            cur_proc=r.cur_proc,
            machine_id=r.machine_id,
            boot_id=r.boot_id,
            system_uuid=r.system_uuid,
        )

    def _dir_fs(self, path: str, now: float, mono: float) -> FsSample | None:
        self._dirs_wanted.add(path)
        du = self._dirs.get(path, mono)
        if du is None:
            return None
        base = fs_sample(path, now)
        if base is None:
            return None
        return FsSample(
            time=now,
            used_bytes=du.used_bytes,
            capacity_bytes=base.capacity_bytes,
            available_bytes=base.available_bytes,
            inodes=base.inodes,
            inodes_free=base.inodes_free,
            inodes_used=du.inodes_used,
        )

    def _sample_container(
        self, c: ContainerStatus, now: float, mono: float, seen: set[str]
    ) -> ContainerSample:
        key = f"ctr/{c.id}"
        got = self._from_cgroup(key, c.cgroup_path, now, mono, seen) if c.cgroup_path else None
        if c.pid > 0 and (got is None or _empty(got)):
            # No cgroup, or one holding nothing (the process was charged elsewhere): a running
            # container still reports its main process, which metrics-server needs non-zero.
            got = self._from_process(f"{key}/proc", c.pid, now, mono, seen) or got
        rootfs = logs = None
        if self.config.rootfs_dir is not None:
            d = self.config.rootfs_dir(c)
            rootfs = self._dir_fs(d, now, mono) if d else None
        if c.log_path:
            logs = self._dir_fs(os.path.dirname(c.log_path), now, mono)
        return ContainerSample(
            name=c.name,
            id=c.id,
            image=c.image,
            start_time=c.started_at or c.created_at,
            cgroup_path=c.cgroup_path,
            cpu=got[0] if got else None,
            memory=got[1] if got else None,
            pids=got[2] if got else None,
            rootfs=rootfs,
            logs=logs,
        )

    def _sample_pod(
        self, sb: SandboxStatus, listing: Listing, now: float, mono: float, seen: set[str]
    ) -> PodSample:
        ctrs = listing.containers.get(sb.id, ())
        containers = tuple(self._sample_container(c, now, mono, seen) for c in ctrs)
        got = None
        if sb.cgroup_parent:
            got = self._from_cgroup(f"pod/{sb.uid}", sb.cgroup_parent, now, mono, seen)
        cpu, mem, pids = got if got else _sum_containers(containers, now)
        network = None
        pid = _netns_pid(sb.netns_path) or next((c.pid for c in ctrs if c.pid > 0), 0)
        if not pid and self._cgroups is not None:  # CRI: no pids, but the cgroups have them
            running = (c for c in ctrs if c.cgroup_path and c.state is ContainerState.RUNNING)
            pid = next((p for c in running if (p := self._cgroups.first_pid(c.cgroup_path))), 0)
        if pid:
            network = self._proc.network(pid, now)
        pod = listing.pods.get(sb.uid)
        start = sb.created_at
        if pod is not None and pod.status is not None and pod.status.start_time:
            start = pod.status.start_time
        volumes: tuple[VolumeSample, ...] = ()
        if pod is not None:
            volumes = pod_volume_samples(
                pod, self._volumes_root(), lambda p: self._dir_fs(p, now, mono)
            )
        parts = [c.rootfs for c in containers] + [c.logs for c in containers]
        parts += [v.fs for v in volumes]
        ephemeral = sum_fs([p for p in parts if p is not None], self._root_fs)
        return PodSample(
            name=sb.name,
            namespace=sb.namespace,
            uid=sb.uid,
            start_time=start,
            containers=containers,
            sandbox_id=sb.id,
            cgroup_path=sb.cgroup_parent,
            cpu=cpu,
            memory=mem,
            network=network,
            volumes=volumes,
            ephemeral_storage=ephemeral,
            process_count=pids,
        )

    def _volumes_root(self) -> str:
        return self.config.pod_volumes_dir or os.path.join(self.config.root_dir, "pods")


def _empty(got: tuple[CpuSample | None, MemorySample | None, int | None]) -> bool:
    cpu, mem, _ = got
    return (cpu is None or cpu.usage_core_ns == 0) and (mem is None or mem.working_set_bytes == 0)


def _netns_pid(netns_path: str) -> int:
    parts = netns_path.strip("/").split("/")
    if len(parts) == 4 and parts[0] == "proc" and parts[1].isdigit():
        return int(parts[1])
    return 0


def _sum_containers(
    cs: Sequence[ContainerSample], now: float
) -> tuple[CpuSample | None, MemorySample | None, int | None]:
    cpus = [c.cpu for c in cs if c.cpu is not None]
    mems = [c.memory for c in cs if c.memory is not None]
    cpu = None
    if cpus:
        rates = [c.usage_nano_cores for c in cpus]
        cpu = CpuSample(
            time=now,
            usage_core_ns=sum(c.usage_core_ns for c in cpus),
            usage_nano_cores=None if None in rates else sum(r or 0 for r in rates),
        )
    mem = None
    if mems:
        mem = MemorySample(
            time=now,
            usage_bytes=sum(m.usage_bytes for m in mems),
            working_set_bytes=sum(m.working_set_bytes for m in mems),
            rss_bytes=sum(m.rss_bytes for m in mems),
            cache_bytes=sum(m.cache_bytes for m in mems),
            page_faults=sum(m.page_faults for m in mems),
            major_page_faults=sum(m.major_page_faults for m in mems),
        )
    pids = [c.pids for c in cs if c.pids is not None]
    return cpu, mem, sum(pids) if pids else None

"""Frozen samples the collector produces and every exporter reads.

Times are float seconds since the epoch (wall clock, as the stats time fields are); sizes are
bytes; CPU is cumulative core-nanoseconds plus a rate in nanocores. ``None`` means "not known",
and the exporters omit what is not known, as upstream omits nil pointers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ContainerSample",
    "CpuSample",
    "FsSample",
    "InterfaceSample",
    "MemorySample",
    "NetworkSample",
    "NodeSample",
    "PodSample",
    "Snapshot",
    "VolumeSample",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuSample:
    time: float
    usage_core_ns: int
    usage_nano_cores: int | None = None  # a rate over the last two samples
    user_ns: int | None = None
    system_ns: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MemorySample:
    time: float
    usage_bytes: int
    working_set_bytes: int
    rss_bytes: int = 0
    cache_bytes: int = 0
    page_faults: int = 0
    major_page_faults: int = 0
    limit_bytes: int | None = None  # None when unlimited

    @property
    def available_bytes(self) -> int | None:
        if self.limit_bytes is None:
            return None
        return max(0, self.limit_bytes - self.working_set_bytes)


@dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceSample:
    name: str
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkSample:
    time: float
    interfaces: tuple[InterfaceSample, ...]
    default_interface: str = "eth0"

    @property
    def default(self) -> InterfaceSample | None:
        for iface in self.interfaces:
            if iface.name == self.default_interface:
                return iface
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class FsSample:
    time: float
    used_bytes: int | None = None
    capacity_bytes: int | None = None
    available_bytes: int | None = None
    inodes: int | None = None
    inodes_free: int | None = None
    inodes_used: int | None = None
    device: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeSample:
    name: str
    fs: FsSample


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerSample:
    name: str
    id: str = ""
    image: str = ""
    start_time: float = 0.0
    cgroup_path: str = ""  # hierarchy-relative, "" when unknown
    cpu: CpuSample | None = None
    memory: MemorySample | None = None
    pids: int | None = None
    rootfs: FsSample | None = None
    logs: FsSample | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PodSample:
    name: str
    namespace: str
    uid: str
    start_time: float
    containers: tuple[ContainerSample, ...]
    sandbox_id: str = ""
    cgroup_path: str = ""
    cpu: CpuSample | None = None
    memory: MemorySample | None = None
    network: NetworkSample | None = None
    volumes: tuple[VolumeSample, ...] = ()
    ephemeral_storage: FsSample | None = None
    process_count: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSample:
    node_name: str
    boot_time: float
    cpu: CpuSample | None = None
    memory: MemorySample | None = None
    network: NetworkSample | None = None
    fs: FsSample | None = None
    image_fs: FsSample | None = None
    system_containers: tuple[ContainerSample, ...] = ()
    num_cores: int = 0
    memory_capacity_bytes: int = 0
    max_pid: int | None = None
    cur_proc: int | None = None
    machine_id: str = ""
    boot_id: str = ""
    system_uuid: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """Everything the endpoints serve, taken by one housekeeping pass."""

    time: float
    node: NodeSample
    pods: tuple[PodSample, ...] = ()
    error: str = ""  # set when the last pass failed; exporters report scrape_error = 1

"""Node, pod and container statistics: cgroup/proc readers, the housekeeping collector, and
the encoders behind /stats/summary and the /metrics endpoints."""

from pykubelet.stats.agent_metrics import AgentMetrics, default_metrics, record_probe
from pykubelet.stats.cgroups import CgroupReader, CgroupUsage
from pykubelet.stats.collector import StatsCollector
from pykubelet.stats.errors import CgroupGone, CgroupParseError, StatsReadError
from pykubelet.stats.exposition import CONTENT_TYPE
from pykubelet.stats.service import PodLayerCounters, StatsService
from pykubelet.stats.source import StatsConfig, StatsSource, upper_dirs_under
from pykubelet.stats.summary import encode_summary, summary_document
from pykubelet.stats.types import (
    ContainerSample,
    CpuSample,
    FsSample,
    InterfaceSample,
    MemorySample,
    NetworkSample,
    NodeSample,
    PodSample,
    Snapshot,
    VolumeSample,
)

__all__ = [
    "CONTENT_TYPE",
    "AgentMetrics",
    "CgroupGone",
    "CgroupParseError",
    "CgroupReader",
    "CgroupUsage",
    "ContainerSample",
    "CpuSample",
    "FsSample",
    "InterfaceSample",
    "MemorySample",
    "NetworkSample",
    "NodeSample",
    "PodLayerCounters",
    "PodSample",
    "Snapshot",
    "StatsCollector",
    "StatsConfig",
    "StatsReadError",
    "StatsService",
    "StatsSource",
    "VolumeSample",
    "default_metrics",
    "encode_summary",
    "record_probe",
    "summary_document",
    "upper_dirs_under",
]

"""The upstream KubeletConfiguration v1beta1 fields pykubelet accepts but does not enforce.

Each row is one field: its JSON type, upstream's default (for help and docs), and the values
that need no warning because pykubelet behaves that way anyway (the type's zero value, which
upstream treats as "unset", unless the row says otherwise). Any other value is logged once at
start-up as not enforced, and ``doctor`` reports it as "accepted, not enforced".

Implementing a field means moving its row to ``kubelet._FIELDS``; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ANY", "KINDS", "NOT_ENFORCED", "UpstreamField", "check_kind", "is_quiet"]


class _Any:
    """A quiet value that matches everything (fields upstream itself no longer acts on)."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()

# kind -> (zero value, description of the JSON type)
KINDS: Mapping[str, tuple[Any, str]] = {
    "bool": (False, "a boolean"),
    "int": (0, "an integer"),
    "float": (0, "a number"),
    "str": ("", "a string"),
    "duration": ("0s", "a duration string such as 30s"),
    "strlist": ([], "a list of strings"),
    "intlist": ([], "a list of integers"),
    "list": ([], "a list"),
    "map": ({}, "an object of strings"),
    "boolmap": ({}, "an object of booleans"),
    "object": ({}, "an object"),
    "any": (None, "a value"),
}


@dataclass(frozen=True, slots=True)
class UpstreamField:
    json: str
    kind: str
    default: str  # upstream's default, as its documentation spells it
    help: str
    quiet: tuple[Any, ...] | None = None  # None: the kind's zero value only


def _f(json: str, kind: str, default: str, help: str, *quiet: Any) -> UpstreamField:
    return UpstreamField(json, kind, default, help, quiet or None)


NOT_ENFORCED: Mapping[str, UpstreamField] = {
    f.json: f
    for f in (
        _f("httpCheckFrequency", "duration", "20s", "how often staticPodURL is polled"),
        _f("staticPodURL", "str", '""', "URL of static pods (file sources only here)"),
        _f("staticPodURLHeader", "object", "nil", "HTTP headers for staticPodURL"),
        _f("podLogsDir", "str", "/var/log/pods", "pod logs are under <rootDir>/logs/pods"),
        _f("tlsCurvePreferences", "intlist", "nil", "TLS key exchange curves (OpenSSL's)"),
        _f("registryPullQPS", "int", "5", "registry pull rate limit"),
        _f("registryBurst", "int", "10", "registry pull burst"),
        _f("imagePullCredentialsVerificationPolicy", "str", "", "re-check pull credentials"),
        _f("preloadedImagesVerificationAllowlist", "strlist", "nil", "images exempt from it"),
        _f("enableContentionProfiling", "bool", "false", "block profiling"),
        _f("oomScoreAdj", "int", "-999", "the agent's own oom_score_adj"),
        _f("clusterDomain", "str", '""', "DNS search domain added to pods"),
        _f("clusterDNS", "strlist", "nil", "DNS servers given to pods"),
        _f("imageMaximumGCAge", "duration", "0s", "image garbage collection"),
        _f("volumeStatsAggPeriod", "duration", "1m", "volume usage cache period"),
        _f("kubeletCgroups", "str", '""', "cgroup of the agent itself"),
        _f("systemCgroups", "str", '""', "cgroup of system processes"),
        _f("cgroupsPerQOS", "bool", "true", "QoS-class cgroup hierarchy"),
        _f("cgroupDriver", "str", "cgroupfs", "cgroups are written directly", "cgroupfs"),
        _f("cpuManagerPolicy", "str", "none", "CPU pinning", "none"),
        _f("singleProcessOOMKill", "bool", "nil", "memory.oom.group"),
        _f("cpuManagerPolicyOptions", "map", "nil", "CPU manager options"),
        _f("cpuManagerReconcilePeriod", "duration", "10s", "CPU manager period"),
        _f("draManagerReconcilePeriod", "duration", "60s", "DRA manager period"),
        _f("memoryManagerPolicy", "str", "None", "NUMA memory pinning", "None", "none"),
        _f("topologyManagerPolicy", "str", "none", "NUMA alignment", "none"),
        _f("topologyManagerScope", "str", "container", "NUMA alignment scope", "container"),
        _f("topologyManagerPolicyOptions", "map", "nil", "topology manager options"),
        _f("qosReserved", "map", "nil", "memory reserved for the Guaranteed class"),
        _f("runtimeRequestTimeout", "duration", "2m", "runtime call timeout"),
        _f("hairpinMode", "str", "promiscuous-bridge", "hairpin traffic on the bridge"),
        _f("resolvConf", "str", "/etc/resolv.conf", "pods get the host file", "/etc/resolv.conf"),
        _f("runOnce", "bool", "false", "run pods once and exit"),
        _f("cpuCFSQuota", "bool", "true", "CPU limits as CFS quota (always on)", True),
        _f("cpuCFSQuotaPeriod", "duration", "100ms", "CFS period", "100ms"),
        _f("maxOpenFiles", "int", "1000000", "the agent's file limit"),
        _f("contentType", "str", "application/vnd.kubernetes.protobuf", "API content type", ANY),
        _f("evictionHard", "map", "memory.available<100Mi,...", "hard eviction thresholds"),
        _f("evictionSoft", "map", "nil", "soft eviction thresholds"),
        _f("evictionSoftGracePeriod", "map", "nil", "soft eviction grace periods"),
        _f("evictionPressureTransitionPeriod", "duration", "5m", "eviction condition hold"),
        _f("evictionMaxPodGracePeriod", "int", "0", "soft eviction grace cap"),
        _f("evictionMinimumReclaim", "map", "nil", "eviction minimum reclaim"),
        _f("mergeDefaultEvictionSettings", "bool", "false", "merge eviction defaults"),
        _f("podsPerCore", "int", "0", "pods per CPU core"),
        _f("enableControllerAttachDetach", "bool", "true", "volume attach by controller", True),
        _f("protectKernelDefaults", "bool", "false", "fail on unexpected kernel tunables"),
        _f("makeIPTablesUtilChains", "bool", "true", "KUBE-IPTABLES-HINT chain"),
        _f("iptablesMasqueradeBit", "int", "14", "no effect upstream either", ANY),
        _f("iptablesDropBit", "int", "15", "no effect upstream either", ANY),
        _f("featureGates", "boolmap", "nil", "feature gates"),
        _f("failSwapOn", "bool", "true", "refuse to start with swap on"),
        _f("memorySwap", "object", "{}", "swap for containers"),
        _f("containerLogMaxWorkers", "int", "1", "log rotation workers"),
        _f("containerLogMonitorInterval", "duration", "10s", "log rotation check period"),
        _f("systemReserved", "map", "nil", "resources reserved for the system"),
        _f("kubeReserved", "map", "nil", "resources reserved for Kubernetes"),
        _f("reservedSystemCPUs", "str", '""', "CPUs reserved for the system"),
        _f("showHiddenMetricsForVersion", "str", '""', "show deprecated metrics"),
        _f("systemReservedCgroup", "str", '""', "system-reserved cgroup"),
        _f("kubeReservedCgroup", "str", '""', "kube-reserved cgroup"),
        _f("enforceNodeAllocatable", "strlist", "[pods]", "node allocatable enforcement"),
        _f("allowedUnsafeSysctls", "strlist", "nil", "unsafe sysctls allowed to pods"),
        _f("volumePluginDir", "str", "/usr/libexec/kubernetes/...", "flexvolume plugins"),
        _f("providerID", "str", '""', "cloud provider instance ID"),
        _f("kernelMemcgNotification", "bool", "false", "memcg eviction notifications"),
        _f("logging.flushFrequency", "any", "5s", "log flush period (lines are unbuffered)", ANY),
        _f("logging.vmodule", "any", "nil", "per-file verbosity"),
        _f("logging.sanitization", "bool", "false", "v1.20 log sanitisation"),
        _f("logging.options", "object", "{}", "format-specific logging options", ANY),
        _f("shutdownGracePeriod", "duration", "0s", "graceful node shutdown"),
        _f("shutdownGracePeriodCriticalPods", "duration", "0s", "graceful node shutdown"),
        _f("shutdownGracePeriodByPodPriority", "list", "nil", "graceful node shutdown"),
        _f("crashLoopBackOff", "object", "{}", "max container restart backoff"),
        _f("reservedMemory", "list", "nil", "NUMA memory reservations"),
        _f("enableProfilingHandler", "bool", "true", "/debug/pprof (never served)", ANY),
        _f("enableDebugFlagsHandler", "bool", "true", "/debug/flags/v (never served)", ANY),
        _f("enableSystemLogQuery", "bool", "false", "node log query on /logs"),
        _f("seccompDefault", "bool", "false", "RuntimeDefault seccomp for every pod"),
        _f("memoryThrottlingFactor", "float", "0.9", "memory.high factor (MemoryQoS)"),
        _f("memoryReservationPolicy", "str", "None", "memory.min protection", "None"),
        _f("tracing", "object", "nil", "OpenTelemetry tracing"),
        _f("localStorageCapacityIsolation", "bool", "true", "ephemeral storage limits", True),
        _f("imageServiceEndpoint", "str", '""', "separate CRI image service"),
        _f("failCgroupV1", "bool", "true", "refuse cgroup v1 hosts"),
        _f("userNamespaces", "object", "nil", "user namespace ID range"),
    )
}


def _has_kind(kind: str, v: Any) -> bool:
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "float":
        return isinstance(v, int | float) and not isinstance(v, bool)
    if kind in ("str", "duration"):
        return isinstance(v, str)
    if kind == "strlist":
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == "intlist":
        return isinstance(v, list) and all(type(x) is int for x in v)
    if kind == "list":
        return isinstance(v, list)
    if kind == "map":
        return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
    if kind == "boolmap":
        return isinstance(v, dict) and all(isinstance(x, bool) for x in v.values())
    if kind == "object":
        return isinstance(v, dict)
    return True


def check_kind(kind: str, value: Any) -> None:
    """Raise ``TypeError`` when ``value`` does not have the field's JSON type."""
    if value is not None and not _has_kind(kind, value):
        raise TypeError(f"expected {KINDS[kind][1]}")


def is_quiet(spec: UpstreamField, value: Any) -> bool:
    """Whether a value set for a not-enforced field needs no warning."""
    quiet = spec.quiet if spec.quiet is not None else (KINDS[spec.kind][0],)
    if value is None or ANY in quiet:
        return True
    if spec.kind == "duration" and isinstance(value, str):
        from pykubelet.config.kubelet import parse_duration  # kubelet imports this module

        def seconds(text: Any) -> float | None:
            try:
                return parse_duration(str(text))
            except ValueError:
                return None

        wanted = {seconds(q) for q in quiet if isinstance(q, str)} | {0.0}
        return seconds(value) in wanted
    return any(type(q) is type(value) and q == value for q in quiet)

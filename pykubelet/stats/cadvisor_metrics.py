"""``/metrics/cadvisor``: the cAdvisor container series dashboards query, from the snapshot.

Series exist for the root cgroup (``id="/"``), the pods cgroup, each pod cgroup, each container
and each pod sandbox (``container="POD"``, which carries the pod's network counters as the pause
container does under cAdvisor). Labels are cAdvisor's as the kubelet sets them:
``container, id, image, name, namespace, pod`` (plus ``cpu``, ``device`` or ``interface``).
HELP texts are cAdvisor's own (no stability prefix: cAdvisor is not a component-base registry).
"""

from __future__ import annotations

from dataclasses import dataclass

from pykubelet.stats.families import Family, Labels
from pykubelet.stats.types import (
    ContainerSample,
    CpuSample,
    FsSample,
    MemorySample,
    NetworkSample,
    Snapshot,
)

__all__ = ["cadvisor_families"]

_BASE = ["container", "id", "image", "name", "namespace", "pod"]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Series:
    labels: tuple[str, str, str, str, str, str]  # in _BASE order
    cpu: CpuSample | None = None
    memory: MemorySample | None = None
    fs: tuple[FsSample, ...] = ()
    network: NetworkSample | None = None
    start_time: float = 0.0


def _cid(path: str) -> str:
    return "/" + path.strip("/")


def _series(snap: Snapshot) -> list[_Series]:
    node = snap.node
    out = [
        _Series(
            labels=("", "/", "", "", "", ""),
            cpu=node.cpu,
            memory=node.memory,
            fs=tuple(f for f in (node.fs,) if f is not None),
            network=node.network,
            start_time=node.boot_time,
        )
    ]
    for sc in node.system_containers:
        if sc.cgroup_path:
            out.append(
                _Series(
                    labels=("", _cid(sc.cgroup_path), "", "", "", ""),
                    cpu=sc.cpu,
                    memory=sc.memory,
                    start_time=sc.start_time,
                )
            )
    for pod in snap.pods:
        ns, name = pod.namespace, pod.name
        pod_id = _cid(pod.cgroup_path) if pod.cgroup_path else f"/pod{pod.uid}"
        out.append(
            _Series(
                labels=("", pod_id, "", "", ns, name),
                cpu=pod.cpu,
                memory=pod.memory,
                start_time=pod.start_time,
            )
        )
        if pod.network is not None:
            out.append(
                _Series(
                    labels=("POD", f"{pod_id}/{pod.sandbox_id}", "", pod.sandbox_id, ns, name),
                    network=pod.network,
                    start_time=pod.start_time,
                )
            )
        for c in pod.containers:
            out.append(_container_series(c, pod_id, ns, name))
    return out


def _container_series(c: ContainerSample, pod_id: str, ns: str, pod: str) -> _Series:
    cid = _cid(c.cgroup_path) if c.cgroup_path else f"{pod_id}/{c.id}"
    return _Series(
        labels=(c.name, cid, c.image, c.id, ns, pod),
        cpu=c.cpu,
        memory=c.memory,
        fs=tuple(f for f in (c.rootfs,) if f is not None),
        start_time=c.start_time,
    )


class _Builder:
    def __init__(self) -> None:
        self.fams: dict[str, Family] = {}

    def fam(self, kind: str, name: str, doc: str) -> Family:
        f = self.fams.get(name)
        if f is None:
            f = self.fams[name] = Family(name=name, type=kind, help=doc)
        return f


def _labels(base: tuple[str, ...], extra: tuple[tuple[str, str], ...] = ()) -> Labels:
    pairs = list(zip(_BASE, base, strict=True))
    if extra:
        pairs = sorted([*pairs, *extra])
    return tuple(pairs)


def cadvisor_families(snap: Snapshot) -> list[Family]:
    """Every family of ``/metrics/cadvisor`` for one snapshot, in name order."""
    b = _Builder()
    for s in _series(snap):
        _add_series(b, s, snap.time)
    machine = (
        ("boot_id", snap.node.boot_id),
        ("machine_id", snap.node.machine_id),
        ("system_uuid", snap.node.system_uuid),
    )
    b.fam("gauge", "machine_cpu_cores", "Number of logical CPU cores.").add(
        machine, snap.node.num_cores, snap.time
    )
    b.fam("gauge", "machine_memory_bytes", "Amount of memory installed on the machine.").add(
        machine, snap.node.memory_capacity_bytes, snap.time
    )
    failed = 1 if snap.error else 0
    b.fam(
        "gauge",
        "container_scrape_error",
        "1 if there was an error while getting container metrics, 0 otherwise",
    ).add((), failed)
    b.fam(
        "gauge",
        "machine_scrape_error",
        "1 if there was an error while getting machine metrics, 0 otherwise.",
    ).add((), 0)
    return [b.fams[k] for k in sorted(b.fams)]


def _add_series(b: _Builder, s: _Series, now: float) -> None:
    base = _labels(s.labels)
    b.fam("gauge", "container_last_seen", "Last time a container was seen by the exporter").add(
        base, int(now), now
    )
    if s.start_time:
        b.fam(
            "gauge",
            "container_start_time_seconds",
            "Start time of the container since unix epoch in seconds.",
        ).add(base, s.start_time)
    if s.cpu is not None:
        c = s.cpu
        if c.usage_core_ns > 0:  # cAdvisor leaves a zero total out
            b.fam(
                "counter",
                "container_cpu_usage_seconds_total",
                "Cumulative cpu time consumed in seconds.",
            ).add(_labels(s.labels, (("cpu", "total"),)), c.usage_core_ns / 1e9, c.time)
        if c.user_ns is not None:
            b.fam(
                "counter",
                "container_cpu_user_seconds_total",
                "Cumulative user cpu time consumed in seconds.",
            ).add(base, c.user_ns / 1e9, c.time)
        if c.system_ns is not None:
            b.fam(
                "counter",
                "container_cpu_system_seconds_total",
                "Cumulative system cpu time consumed in seconds.",
            ).add(base, c.system_ns / 1e9, c.time)
    if s.memory is not None:
        m = s.memory
        for name, doc, value in (
            ("container_memory_cache", "Number of bytes of page cache memory.", m.cache_bytes),
            ("container_memory_rss", "Size of RSS in bytes.", m.rss_bytes),
            (
                "container_memory_usage_bytes",
                "Current memory usage in bytes, including all memory regardless of when it was "
                "accessed",
                m.usage_bytes,
            ),
            (
                "container_memory_working_set_bytes",
                "Current working set in bytes.",
                m.working_set_bytes,
            ),
        ):
            b.fam("gauge", name, doc).add(base, value, m.time)
        b.fam("gauge", "container_spec_memory_limit_bytes", "Memory limit for the container.").add(
            base, m.limit_bytes or 0
        )
    for f in s.fs:
        dev = _labels(s.labels, (("device", f.device),))
        for name, doc, v in (
            (
                "container_fs_usage_bytes",
                "Number of bytes that are consumed by the container on this filesystem.",
                f.used_bytes,
            ),
            (
                "container_fs_limit_bytes",
                "Number of bytes that can be consumed by the container on this filesystem.",
                f.capacity_bytes,
            ),
            ("container_fs_inodes_total", "Number of Inodes", f.inodes),
            ("container_fs_inodes_free", "Number of available Inodes", f.inodes_free),
        ):
            if v is not None:
                b.fam("gauge", name, doc).add(dev, v, f.time)
    if s.network is not None:
        n = s.network
        for i in n.interfaces:
            lab = _labels(s.labels, (("interface", i.name),))
            for name, doc, v in (
                ("receive_bytes", "bytes received", i.rx_bytes),
                ("receive_errors", "errors encountered while receiving", i.rx_errors),
                ("receive_packets_dropped", "packets dropped while receiving", i.rx_dropped),
                ("receive_packets", "packets received", i.rx_packets),
                ("transmit_bytes", "bytes transmitted", i.tx_bytes),
                ("transmit_errors", "errors encountered while transmitting", i.tx_errors),
                ("transmit_packets_dropped", "packets dropped while transmitting", i.tx_dropped),
                ("transmit_packets", "packets transmitted", i.tx_packets),
            ):
                b.fam(
                    "counter", f"container_network_{name}_total", f"Cumulative count of {doc}"
                ).add(lab, v, n.time)

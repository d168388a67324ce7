"""``/metrics/cadvisor``: the cAdvisor container series dashboards query, from the snapshot.

Series exist for the root cgroup (``id="/"``), the pods cgroup, each pod cgroup, each container
and each pod sandbox (``container="POD"``, which carries the pod's network counters as the pause
container does under cAdvisor). Labels are cAdvisor's as the kubelet sets them:
``container, id, image, name, namespace, pod`` (plus ``cpu``, ``device`` or ``interface``).
HELP texts are cAdvisor's own (no stability prefix: cAdvisor is not a component-base registry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from pykubelet.stats.types import (
    ContainerSample,
    CpuSample,
    FsSample,
    MemorySample,
    NetworkSample,
    Snapshot,
)

__all__ = ["cadvisor_metric_families"]

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


def cadvisor_metric_families(
    latest: Callable[[], Snapshot | None],
) -> Callable[[], Iterator[Metric]]:
    """A producer for ``FunctionCollector`` reading the latest snapshot at each scrape."""

    def produce() -> Iterator[Metric]:
        snap = latest()
        if snap is None:
            return
        fams: dict[str, Metric] = {}

        def fam(kind: str, name: str, doc: str, extra: tuple[str, ...] = ()) -> Metric:
            if name not in fams:
                labels = sorted([*_BASE, *extra])
                cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                fams[name] = cls(name, doc, labels=labels)
            return fams[name]

        def add(
            m: Metric,
            s: _Series,
            value: float,
            ts: float | None,
            extra: dict[str, str] | None = None,
        ) -> None:
            labels = dict(zip(_BASE, s.labels, strict=True))
            labels.update(extra or {})
            assert isinstance(m, CounterMetricFamily | GaugeMetricFamily)
            m.add_metric([labels[k] for k in sorted(labels)], value, timestamp=ts)

        for s in _series(snap):
            add(
                fam(
                    "gauge", "container_last_seen", "Last time a container was seen by the exporter"
                ),
                s,
                snap.time,
                snap.time,
            )
            if s.start_time:
                add(
                    fam(
                        "gauge",
                        "container_start_time_seconds",
                        "Start time of the container since unix epoch in seconds.",
                    ),
                    s,
                    s.start_time,
                    None,
                )
            if s.cpu is not None:
                c = s.cpu
                add(
                    fam(
                        "counter",
                        "container_cpu_usage_seconds",
                        "Cumulative cpu time consumed in seconds.",
                        ("cpu",),
                    ),
                    s,
                    c.usage_core_ns / 1e9,
                    c.time,
                    {"cpu": "total"},
                )
                if c.user_ns is not None:
                    add(
                        fam(
                            "counter",
                            "container_cpu_user_seconds",
                            "Cumulative user cpu time consumed in seconds.",
                        ),
                        s,
                        c.user_ns / 1e9,
                        c.time,
                    )
                if c.system_ns is not None:
                    add(
                        fam(
                            "counter",
                            "container_cpu_system_seconds",
                            "Cumulative system cpu time consumed in seconds.",
                        ),
                        s,
                        c.system_ns / 1e9,
                        c.time,
                    )
            if s.memory is not None:
                m = s.memory
                add(
                    fam(
                        "gauge",
                        "container_memory_usage_bytes",
                        "Current memory usage in bytes, including all memory regardless of when "
                        "it was accessed",
                    ),
                    s,
                    m.usage_bytes,
                    m.time,
                )
                add(
                    fam(
                        "gauge",
                        "container_memory_working_set_bytes",
                        "Current working set in bytes.",
                    ),
                    s,
                    m.working_set_bytes,
                    m.time,
                )
                add(
                    fam("gauge", "container_memory_rss", "Size of RSS in bytes."),
                    s,
                    m.rss_bytes,
                    m.time,
                )
                add(
                    fam("gauge", "container_memory_cache", "Number of bytes of page cache memory."),
                    s,
                    m.cache_bytes,
                    m.time,
                )
                add(
                    fam(
                        "gauge",
                        "container_spec_memory_limit_bytes",
                        "Memory limit for the container.",
                    ),
                    s,
                    m.limit_bytes or 0,
                    None,
                )
            for f in s.fs:
                dev = {"device": f.device}
                if f.used_bytes is not None:
                    add(
                        fam(
                            "gauge",
                            "container_fs_usage_bytes",
                            "Number of bytes that are consumed by the container on this "
                            "filesystem.",
                            ("device",),
                        ),
                        s,
                        f.used_bytes,
                        f.time,
                        dev,
                    )
                if f.capacity_bytes is not None:
                    add(
                        fam(
                            "gauge",
                            "container_fs_limit_bytes",
                            "Number of bytes that can be consumed by the container on this "
                            "filesystem.",
                            ("device",),
                        ),
                        s,
                        f.capacity_bytes,
                        f.time,
                        dev,
                    )
                if f.inodes is not None:
                    add(
                        fam("gauge", "container_fs_inodes_total", "Number of Inodes", ("device",)),
                        s,
                        f.inodes,
                        f.time,
                        dev,
                    )
                if f.inodes_free is not None:
                    add(
                        fam(
                            "gauge",
                            "container_fs_inodes_free",
                            "Number of available Inodes",
                            ("device",),
                        ),
                        s,
                        f.inodes_free,
                        f.time,
                        dev,
                    )
            if s.network is not None:
                n = s.network
                for i in n.interfaces:
                    iface = {"interface": i.name}
                    for field, direction, what, value in (
                        ("receive_bytes", "received", "bytes", i.rx_bytes),
                        ("receive_packets", "received", "packets", i.rx_packets),
                        ("transmit_bytes", "transmitted", "bytes", i.tx_bytes),
                        ("transmit_packets", "transmitted", "packets", i.tx_packets),
                    ):
                        add(
                            fam(
                                "counter",
                                f"container_network_{field}",
                                f"Cumulative count of {what} {direction}",
                                ("interface",),
                            ),
                            s,
                            value,
                            n.time,
                            iface,
                        )
                    for field, doc, value in (
                        ("receive_errors", "errors encountered while receiving", i.rx_errors),
                        (
                            "receive_packets_dropped",
                            "packets dropped while receiving",
                            i.rx_dropped,
                        ),
                        ("transmit_errors", "errors encountered while transmitting", i.tx_errors),
                        (
                            "transmit_packets_dropped",
                            "packets dropped while transmitting",
                            i.tx_dropped,
                        ),
                    ):
                        add(
                            fam(
                                "counter",
                                f"container_network_{field}",
                                f"Cumulative count of {doc}",
                                ("interface",),
                            ),
                            s,
                            value,
                            n.time,
                            iface,
                        )
        yield from (fams[k] for k in sorted(fams))
        machine = ["boot_id", "machine_id", "system_uuid"]
        ids = [snap.node.boot_id, snap.node.machine_id, snap.node.system_uuid]
        cores = GaugeMetricFamily(
            "machine_cpu_cores", "Number of logical CPU cores.", labels=machine
        )
        cores.add_metric(ids, snap.node.num_cores)
        mem = GaugeMetricFamily(
            "machine_memory_bytes", "Amount of memory installed on the machine.", labels=machine
        )
        mem.add_metric(ids, snap.node.memory_capacity_bytes)
        yield cores
        yield mem

    return produce

"""A plain family/row model for large expositions, rendered two ways.

``render_text`` writes the Prometheus text format directly (escaped label sets are cached, so a
series' six cAdvisor labels are escaped once, not once per family). ``to_metric`` turns the same
family into a prometheus_client ``Metric``; tests check that prometheus_client's own
``generate_latest`` renders byte-identical text, so the fast path cannot drift from the library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString as _untyped_float_to_go

__all__ = ["Family", "Labels", "render_text", "to_metric"]

Labels = tuple[tuple[str, str], ...]  # sorted by label name

# The library's own number formatting (Go style: 1.5e+09, +Inf), so output matches byte for byte.
floatToGoString = cast(Callable[[float], str], _untyped_float_to_go)


@dataclass(slots=True)
class Family:
    name: str  # the exposed name; counters end in ``_total``
    type: str  # "counter" or "gauge"
    help: str
    rows: list[tuple[Labels, float, float | None]] = field(default_factory=list)

    def add(self, labels: Labels, value: float, timestamp: float | None = None) -> None:
        self.rows.append((labels, value, timestamp))


def _escape(v: str) -> str:
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render_text(families: Iterable[Family]) -> bytes:
    out: list[str] = []
    cache: dict[Labels, str] = {}
    for fam in families:
        name = fam.name
        doc = fam.help.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {fam.type}\n")
        for labels, value, ts in fam.rows:
            text = cache.get(labels)
            if text is None:
                inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                text = cache[labels] = f"{{{inner}}}" if inner else ""
            if ts is None:
                out.append(f"{name}{text} {floatToGoString(value)}\n")
            else:
                out.append(f"{name}{text} {floatToGoString(value)} {int(float(ts) * 1000):d}\n")
    return "".join(out).encode()


def to_metric(fam: Family) -> Metric:
    names = [k for k, _ in fam.rows[0][0]] if fam.rows else []
    m: CounterMetricFamily | GaugeMetricFamily
    if fam.type == "counter":
        m = CounterMetricFamily(fam.name, fam.help, labels=names)
    else:
        m = GaugeMetricFamily(fam.name, fam.help, labels=names)
    for labels, value, ts in fam.rows:
        m.add_metric([v for _, v in labels], value, timestamp=ts)
    return m

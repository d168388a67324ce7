"""The kubelet's admission predicates (upstream ``lifecycle/predicate.go`` ``generalFilter``).

Pure functions of the pod, the node and the pods already admitted. Checked in upstream's order:
resources against allocatable (``OutOf<resource>``), node selector and required node affinity
(``NodeAffinity``), ``spec.nodeName`` (``NodeName``), and for non-static pods untolerated
``NoExecute`` taints (``TaintToleration``). The first failure wins. Pod count and host ports
stay in ``PodManager`` (they need no node object).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pykubelet.api import Pod
from pykubelet.api.quantity import parse_quantity
from pykubelet.core.errors import InvalidInput

__all__ = [
    "AdmissionNode",
    "admission_failure",
    "matches_node_affinity",
    "pod_requests",
    "tolerates",
]

_RESOURCES = ("cpu", "memory", "ephemeral-storage")


@dataclass(frozen=True, slots=True, kw_only=True)
class AdmissionNode:
    """What admission needs of the Node: its name, labels, taints and allocatable
    (cpu in millicores, the rest in units)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, Any], ...] = ()
    allocatable: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> AdmissionNode:
        md = node.get("metadata") or {}
        alloc: dict[str, int] = {}
        for name, text in ((node.get("status") or {}).get("allocatable") or {}).items():
            try:
                q = parse_quantity(text)
            except InvalidInput:
                continue
            alloc[name] = q.milli_value() if name == "cpu" else q.value()
        return cls(
            name=str(md.get("name", "")),
            labels=dict(md.get("labels") or {}),
            taints=tuple((node.get("spec") or {}).get("taints") or ()),
            allocatable=alloc,
        )


def _amount(name: str, text: Any) -> int:
    try:
        q = parse_quantity(text)
    except InvalidInput:
        return 0
    return q.milli_value() if name == "cpu" else q.value()


def _requests(container: Mapping[str, Any]) -> dict[str, int]:
    res = container.get("resources") or {}
    # as the API server defaults: a limit without a request is the request
    merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
    return {n: _amount(n, v) for n, v in merged.items()}


def pod_requests(pod: Pod) -> dict[str, int]:
    """Upstream's effective request: the sum over containers, at least the largest init
    container's, plus ``spec.overhead``."""
    spec = pod.raw.get("spec") or {}
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        for n, v in _requests(c).items():
            total[n] = total.get(n, 0) + v
    for c in spec.get("initContainers") or []:
        for n, v in _requests(c).items():
            total[n] = max(total.get(n, 0), v)
    for n, v in (spec.get("overhead") or {}).items():
        total[n] = total.get(n, 0) + _amount(n, v)
    return total


def _term_matches(term: Mapping[str, Any], node: AdmissionNode) -> bool:
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches nothing
    for e in exprs:
        if not _expression(e, node.labels.get(str(e.get("key"))), str(e.get("key")) in node.labels):
            return False
    for e in fields:
        if e.get("key") != "metadata.name" or not _expression(e, node.name, True):
            return False
    return True


def _expression(e: Mapping[str, Any], value: str | None, present: bool) -> bool:
    op = e.get("operator")
    values = [str(v) for v in e.get("values") or []]
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, want = int(str(value)), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def matches_node_affinity(pod: Pod, node: AdmissionNode) -> bool:
    spec = pod.raw.get("spec") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if node.labels.get(k) != v:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if terms is None:
        return True
    return any(_term_matches(t, node) for t in terms)


def _tolerated(taint: Mapping[str, Any], toleration: Mapping[str, Any]) -> bool:
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    if toleration.get("operator") == "Exists":
        return True
    return bool(key) and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerates(pod: Pod, taints: Iterable[Mapping[str, Any]], effects: Sequence[str]) -> bool:
    """Whether every taint with one of ``effects`` is tolerated by the pod."""
    tolerations = (pod.raw.get("spec") or {}).get("tolerations") or []
    return all(
        any(_tolerated(t, tol) for tol in tolerations) for t in taints if t.get("effect") in effects
    )


def _is_static(pod: Pod) -> bool:
    return pod.meta.annotations.get("kubernetes.io/config.source") not in (None, "api")


def admission_failure(
    pod: Pod, node: AdmissionNode, admitted: Sequence[Pod]
) -> tuple[str, str] | None:
    """(reason, message) of the first predicate the pod fails, or None."""
    want = pod_requests(pod)
    used: dict[str, int] = {}
    for p in admitted:
        for n, v in pod_requests(p).items():
            used[n] = used.get(n, 0) + v
    names = [*_RESOURCES, *sorted(n for n in want if n not in _RESOURCES)]
    for name in names:
        asked = want.get(name, 0)
        if asked == 0:
            continue
        capacity = node.allocatable.get(name)
        if capacity is None:
            if name in _RESOURCES:
                continue  # the node reports nothing to check against
            capacity = 0  # an extended resource the node does not have
        if asked + used.get(name, 0) > capacity:
            return f"OutOf{name}", (
                f"Node didn't have enough resource: {name}, requested: {asked}, "
                f"used: {used.get(name, 0)}, capacity: {capacity}"
            )
    if not matches_node_affinity(pod, node):
        return "NodeAffinity", "Predicate NodeAffinity failed"
    if pod.spec.node_name and pod.spec.node_name != node.name:
        return "NodeName", "Predicate NodeName failed"
    if not _is_static(pod) and not tolerates(pod, node.taints, ("NoExecute",)):
        return "TaintToleration", "Predicate TaintToleration failed"
    return None

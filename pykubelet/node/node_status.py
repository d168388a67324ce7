"""The Node object and its status, as upstream's status setters compute them (pure functions).

Reference §1: labels, capacity and allocatable (hard-eviction thresholds and hugepages taken
out of allocatable), addresses, daemon endpoint, nodeInfo, and the four conditions with
upstream's reasons. ``status_differs`` is the skip-if-unchanged rule: conditions compared
without ``lastHeartbeatTime``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pykubelet.node.machine import MachineFacts

__all__ = [
    "ImageRecord",
    "NodeSettings",
    "adopt_patch",
    "build_node",
    "build_status",
    "default_labels",
    "node_images",
    "quantity",
    "status_differs",
]

MEMORY_EVICTION_BYTES = 100 << 20  # evictionHard memory.available<100Mi
NODEFS_EVICTION_FRACTION = 0.10  # evictionHard nodefs.available<10%
ATTACH_DETACH = "volumes.kubernetes.io/controller-managed-attach-detach"
MAX_NAMES_PER_IMAGE = 5  # upstream's MaxNamesPerImageInNodeStatus

# (type, reason and message when False, reason and message when True)
_PRESSURE = (
    (
        "MemoryPressure",
        ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    ),
    (
        "DiskPressure",
        ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("KubeletHasDiskPressure", "kubelet has disk pressure"),
    ),
    (
        "PIDPressure",
        ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSettings:
    name: str
    hostname: str
    node_ip: str
    port: int
    max_pods: int
    labels: tuple[tuple[str, str], ...] = ()  # --node-labels
    taints: tuple[tuple[str, str, str], ...] = ()  # --register-with-taints
    kubelet_version: str = ""
    runtime_version: str = ""  # "<scheme>://<version>"


class ImageRecord(Protocol):
    """What node status needs of an image the runtime lists (the runtime's ``ImageInfo``)."""

    @property
    def repo_digests(self) -> Sequence[str]: ...

    @property
    def repo_tags(self) -> Sequence[str]: ...

    @property
    def size_bytes(self) -> int: ...


def node_images(images: Iterable[ImageRecord], max_images: int) -> list[dict[str, Any]]:
    """``status.images`` as upstream's ``Images`` setter: largest first, the first
    ``max_images`` (-1: all), each named by its repo digests then its tags, at most 5 names."""
    ordered = sorted(images, key=lambda i: i.size_bytes, reverse=True)
    if max_images > -1:
        ordered = ordered[:max_images]
    return [
        {
            "names": [*i.repo_digests, *i.repo_tags][:MAX_NAMES_PER_IMAGE],
            "sizeBytes": i.size_bytes,
        }
        for i in ordered
    ]


def time_text(ts: float) -> str:
    return _dt.datetime.fromtimestamp(int(ts), tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def quantity(n: int) -> str:
    """A byte count as Go's BinarySI canonical form: the largest suffix that divides it."""
    if n == 0:
        return "0"
    for unit, shift in (("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def default_labels(s: NodeSettings, facts: MachineFacts) -> dict[str, str]:
    return {
        "beta.kubernetes.io/arch": facts.architecture,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": facts.architecture,
        "kubernetes.io/hostname": s.hostname,
        "kubernetes.io/os": "linux",
    }


def _resources(s: NodeSettings, facts: MachineFacts) -> tuple[dict[str, str], dict[str, str]]:
    capacity = {
        "cpu": str(facts.cpu_cores),
        "memory": quantity(facts.memory_bytes),
        "pods": str(s.max_pods),
        "ephemeral-storage": quantity(facts.ephemeral_storage_bytes),
    }
    hugepages = sum(facts.hugepages.values())
    for name, size in facts.hugepages.items():
        capacity[name] = quantity(size)
    allocatable = dict(capacity)
    allocatable["memory"] = quantity(max(0, facts.memory_bytes - MEMORY_EVICTION_BYTES - hugepages))
    disk = facts.ephemeral_storage_bytes
    allocatable["ephemeral-storage"] = quantity(max(0, disk - int(disk * NODEFS_EVICTION_FRACTION)))
    return capacity, allocatable


def _conditions(
    previous: Sequence[Mapping[str, Any]], ready_errors: Sequence[str], now: float
) -> list[dict[str, Any]]:
    before = {c.get("type"): c for c in previous}
    stamp = time_text(now)
    out = []
    wanted: list[tuple[str, str, str, str]] = [
        (ctype, "False", *ok) for ctype, ok, _bad in _PRESSURE
    ]
    if ready_errors:
        message = ready_errors[0] if len(ready_errors) == 1 else f"[{', '.join(ready_errors)}]"
        wanted.append(("Ready", "False", "KubeletNotReady", message))
    else:
        wanted.append(("Ready", "True", "KubeletReady", "kubelet is posting ready status"))
    for ctype, status, reason, message in wanted:
        old = before.get(ctype)
        transition = (
            old["lastTransitionTime"]
            if old and old.get("status") == status and old.get("lastTransitionTime")
            else stamp
        )
        out.append(
            {
                "type": ctype,
                "status": status,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": transition,
                "reason": reason,
                "message": message,
            }
        )
    return out


def build_status(
    s: NodeSettings,
    facts: MachineFacts,
    *,
    previous: Mapping[str, Any] | None,
    ready_errors: Sequence[str],
    now: float,
    images: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The status the kubelet owns; ``previous`` (the server's) keeps transition times."""
    capacity, allocatable = _resources(s, facts)
    status: dict[str, Any] = {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": _conditions((previous or {}).get("conditions") or [], ready_errors, now),
        "addresses": [
            {"type": "InternalIP", "address": s.node_ip},
            {"type": "Hostname", "address": s.hostname},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": s.port}},
        "nodeInfo": {
            "machineID": facts.machine_id,
            "systemUUID": facts.system_uuid,
            "bootID": facts.boot_id,
            "kernelVersion": facts.kernel_version,
            "osImage": facts.os_image,
            "containerRuntimeVersion": s.runtime_version,
            "kubeletVersion": s.kubelet_version,
            "kubeProxyVersion": s.kubelet_version,
            "operatingSystem": "linux",
            "architecture": facts.architecture,
        },
    }
    if images:
        status["images"] = [dict(i) for i in images]
    return status


def build_node(s: NodeSettings, facts: MachineFacts, status: Mapping[str, Any]) -> dict[str, Any]:
    """The Node POSTed at registration: default labels, then ``--node-labels`` over them."""
    labels = default_labels(s, facts)
    labels.update(dict(s.labels))
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": s.name,
            "labels": labels,
            "annotations": {ATTACH_DETACH: "true"},
        },
        "spec": {},
        "status": dict(status),
    }
    if s.taints:
        node["spec"]["taints"] = [
            {"key": k, **({"value": v} if v else {}), "effect": e} for k, v, e in s.taints
        ]
    return node


def adopt_patch(
    existing: Mapping[str, Any], s: NodeSettings, facts: MachineFacts
) -> dict[str, Any]:
    """Reconciling an existing Node (409 at registration), as upstream: the attach/detach
    annotation and the default labels rewritten, hugepages replaced; ``--node-labels`` not
    re-applied. ``{}`` when nothing changes."""
    md = existing.get("metadata") or {}
    patch_md: dict[str, Any] = {}
    if (md.get("annotations") or {}).get(ATTACH_DETACH) != "true":
        patch_md["annotations"] = {ATTACH_DETACH: "true"}
    labels = md.get("labels") or {}
    wanted = {k: v for k, v in default_labels(s, facts).items() if labels.get(k) != v}
    if wanted:
        patch_md["labels"] = wanted
    patch: dict[str, Any] = {"metadata": patch_md} if patch_md else {}
    status = existing.get("status") or {}
    capacity, allocatable = _resources(s, facts)
    fix: dict[str, dict[str, str | None]] = {}
    for key, fresh in (("capacity", capacity), ("allocatable", allocatable)):
        have = status.get(key) or {}
        changes: dict[str, str | None] = {
            n: fresh[n] for n in fresh if n.startswith("hugepages-") and have.get(n) != fresh[n]
        }
        changes.update({n: None for n in have if n.startswith("hugepages-") and n not in fresh})
        if changes:
            fix[key] = changes
    if fix:
        patch["status"] = fix
    return patch


def _without_heartbeat(status: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(status)
    conds = [
        {k: v for k, v in c.items() if k != "lastHeartbeatTime"}
        for c in (status.get("conditions") or [])
    ]
    out["conditions"] = sorted(conds, key=lambda c: str(c.get("type")))
    return out


def status_differs(
    server: Mapping[str, Any], wanted: Mapping[str, Any], last_sent: Mapping[str, Any] | None
) -> bool:
    """Whether ``wanted`` changes anything: a condition differs from the server's (the node
    lifecycle controller writes ``Unknown``), or any field differs from what this agent last
    sent (``lastHeartbeatTime`` ignored, as upstream's skip-if-unchanged rule). Comparing with
    our own last copy, not the server's, avoids false changes from quantity canonicalisation
    (``2000`` comes back as ``2k``)."""
    if last_sent is None:
        return True
    mine = _without_heartbeat(wanted)
    server_conds = {c["type"]: c for c in _without_heartbeat(server)["conditions"]}
    if any(server_conds.get(c["type"]) != c for c in mine["conditions"]):
        return True
    return mine != _without_heartbeat(last_sent)

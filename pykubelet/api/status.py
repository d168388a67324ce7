"""v1 PodStatus as frozen values; ``to_dict()`` is the only place upstream JSON names appear."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ContainerStateRunning",
    "ContainerStateTerminated",
    "ContainerStateWaiting",
    "ContainerStateView",
    "ContainerStatusView",
    "PodCondition",
    "PodStatus",
    "rfc3339",
]


def rfc3339(ts: float) -> str:
    """metav1.Time: second precision, UTC, ``Z``."""
    return _dt.datetime.fromtimestamp(int(ts), tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerStateWaiting:
    reason: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.reason:
            d["reason"] = self.reason
        if self.message:
            d["message"] = self.message
        return d


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerStateRunning:
    started_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"startedAt": rfc3339(self.started_at)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerStateTerminated:
    exit_code: int
    reason: str = ""
    message: str = ""
    signal: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    container_id: str = ""  # "<runtime>://<id>"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"exitCode": self.exit_code}
        if self.signal:
            d["signal"] = self.signal
        if self.reason:
            d["reason"] = self.reason
        if self.message:
            d["message"] = self.message
        d["startedAt"] = rfc3339(self.started_at) if self.started_at else None
        d["finishedAt"] = rfc3339(self.finished_at) if self.finished_at else None
        if self.container_id:
            d["containerID"] = self.container_id
        return d


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerStateView:
    """Exactly one of the three is set, or none (no state yet)."""

    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.waiting is not None:
            d["waiting"] = self.waiting.to_dict()
        if self.running is not None:
            d["running"] = self.running.to_dict()
        if self.terminated is not None:
            d["terminated"] = self.terminated.to_dict()
        return d


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerStatusView:
    name: str
    image: str
    state: ContainerStateView = ContainerStateView()
    last_state: ContainerStateView = ContainerStateView()
    ready: bool = False
    restart_count: int = 0
    image_id: str = ""
    container_id: str = ""  # "<runtime>://<id>"
    started: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "state": self.state.to_dict(),
            "lastState": self.last_state.to_dict(),
            "ready": self.ready,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": self.image_id,
        }
        if self.container_id:
            d["containerID"] = self.container_id
        if self.started is not None:
            d["started"] = self.started
        return d


@dataclass(frozen=True, slots=True, kw_only=True)
class PodCondition:
    type: str  # PodScheduled, Initialized, ContainersReady, Ready
    status: str  # "True" / "False" / "Unknown"
    last_transition_time: float = 0.0
    reason: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": self.type,
            "status": self.status,
            "lastProbeTime": None,
            "lastTransitionTime": (
                rfc3339(self.last_transition_time) if self.last_transition_time else None
            ),
        }
        if self.reason:
            d["reason"] = self.reason
        if self.message:
            d["message"] = self.message
        return d


@dataclass(frozen=True, slots=True, kw_only=True)
class PodStatus:
    phase: str = "Pending"  # Pending, Running, Succeeded, Failed, Unknown
    conditions: tuple[PodCondition, ...] = ()
    message: str = ""
    reason: str = ""
    host_ip: str = ""
    pod_ip: str = ""
    pod_ips: tuple[str, ...] = ()
    start_time: float = 0.0
    init_container_statuses: tuple[ContainerStatusView, ...] = ()
    container_statuses: tuple[ContainerStatusView, ...] = ()
    qos_class: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"phase": self.phase}
        if self.conditions:
            d["conditions"] = [c.to_dict() for c in self.conditions]
        if self.message:
            d["message"] = self.message
        if self.reason:
            d["reason"] = self.reason
        if self.host_ip:
            d["hostIP"] = self.host_ip
        if self.pod_ip:
            d["podIP"] = self.pod_ip
            d["podIPs"] = [{"ip": ip} for ip in (self.pod_ips or (self.pod_ip,))]
        if self.start_time:
            d["startTime"] = rfc3339(self.start_time)
        if self.init_container_statuses:
            d["initContainerStatuses"] = [c.to_dict() for c in self.init_container_statuses]
        if self.container_statuses:
            d["containerStatuses"] = [c.to_dict() for c in self.container_statuses]
        if self.qos_class:
            d["qosClass"] = self.qos_class
        return d

    def find_container(self, name: str) -> ContainerStatusView | None:
        """containerStatuses first, then initContainerStatuses (as the kubelet searches)."""
        for c in (*self.container_statuses, *self.init_container_statuses):
            if c.name == name:
                return c
        return None

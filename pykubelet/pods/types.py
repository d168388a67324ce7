"""Values the pod layer passes between its parts: source updates and counters."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pykubelet.api import Pod

__all__ = ["KillRequest", "PodLayerStats", "PodUpdate", "UpdateOp", "WorkerPhase"]


class UpdateOp(enum.Enum):
    """As upstream's kubetypes: SET replaces everything a source knows (the file source sends
    SET after every change); ADD/REMOVE are deltas."""

    SET = "SET"
    ADD = "ADD"
    REMOVE = "REMOVE"


@dataclass(frozen=True, slots=True, kw_only=True)
class PodUpdate:
    op: UpdateOp
    source: str  # "file", "api"
    pods: tuple[Pod, ...]


class WorkerPhase(enum.Enum):
    SYNCING = "SYNCING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"


@dataclass(frozen=True, slots=True, kw_only=True)
class PodLayerStats:
    """Counters for the stats helper (plain values, not prometheus objects)."""

    desired_pods: int
    running_pods: int
    running_containers: int
    pod_start_durations_s: tuple[float, ...]  # seen → every container running, per pod started
    container_restarts: int
    sync_errors: int


@dataclass(frozen=True, slots=True)
class KillRequest:
    """A wish to stop one container (a failed liveness or startup probe): the pod's worker
    carries it out in its next sync, after the container's preStop hook; its restartPolicy
    then decides what follows."""

    container_id: str
    message: str  # the Killing event's message
    grace_s: float | None = None  # the probe's terminationGracePeriodSeconds, else the pod's

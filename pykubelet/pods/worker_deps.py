"""What a ``PodWorker`` needs: the runtime, the clock, the back-offs, and extension points.

The extension points are how the pod-spec layer (probes, lifecycle hooks, volumes, network)
plugs into the lifecycle without the worker knowing about any of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pykubelet.api import Container, Pod
from pykubelet.core.clock import Clock
from pykubelet.pods.backoff import Backoff
from pykubelet.pods.cache import ContainerCache
from pykubelet.pods.events import EventSink, NoEvents
from pykubelet.pods.images import PullCredentials
from pykubelet.pods.runtime_config import RuntimeConfigBuilder
from pykubelet.pods.status_manager import StatusManager
from pykubelet.runtime.protocol import ImageService, Runtime
from pykubelet.runtime.types import ContainerConfig, ContainerStatus, SandboxStatus

__all__ = ["WorkerCounters", "WorkerDeps", "go_duration"]


@dataclass(slots=True)
class WorkerCounters:
    """Shared by every worker; read by ``PodManager.stats()``."""

    pod_start_durations_s: list[float] = field(default_factory=list)
    container_restarts: int = 0
    sync_errors: int = 0


def _no_readiness(container_id: str) -> bool | None:
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerDeps:
    runtime: Runtime
    images: ImageService
    statuses: StatusManager
    clock: Clock
    builder: RuntimeConfigBuilder
    runtime_name: str  # container ids in status are "<runtime_name>://<id>"
    crash_backoff: Backoff
    image_backoff: Backoff
    counters: WorkerCounters
    # registry credentials for the pod's pulls (pull secrets, the node's docker config)
    pull_credentials: PullCredentials = field(default_factory=PullCredentials)
    # pulls under way on the node at once (serializeImagePulls, maxParallelImagePulls); None: any
    image_pull_gate: asyncio.Semaphore | None = None
    host_ip: str = ""
    # the relister's latest container list; None: workers always ask the runtime
    cache: ContainerCache | None = None
    # where Pulled/Created/Started/Killing/BackOff... go (the API server's events in node mode)
    events: EventSink = field(default_factory=NoEvents)
    # Extension points for the pod-spec features (probes, hooks, volumes). All optional.
    # They report; only the worker asks the runtime to start or stop the pod's containers.
    # readiness by container id: True/False from a readiness probe, None = no opinion
    readiness: Callable[[str], bool | None] = _no_readiness
    # startup by container id: False until a startup probe succeeded, None = no opinion
    started: Callable[[str], bool | None] = _no_readiness
    # before the first container of a pod starts, with its ready sandbox (volumes, pod IPs);
    # raising InvalidInput keeps the pod waiting with CreateContainerConfigError
    prepare_pod: Callable[[Pod, SandboxStatus], Awaitable[None]] | None = None
    # before each container is created (host files it mounts); InvalidInput keeps it waiting
    # with CreateContainerConfigError
    prepare_container: Callable[[ContainerConfig], Awaitable[None]] | None = None
    # after a container was started (postStart hooks); returns why the container must be
    # killed (a failed postStart hook), or None
    on_container_started: Callable[[Pod, Container, str], Awaitable[str | None]] | None = None
    # once for every container seen running, including adopted ones (start probing)
    on_container_running: (
        Callable[[Pod, Container, ContainerStatus, SandboxStatus], Awaitable[None]] | None
    ) = None
    # once when a container announced running is seen exited or removed (stop probing)
    on_container_exited: Callable[[Pod, str], Awaitable[None]] | None = None
    # runs preStop hooks; returns the grace period left for the stop itself
    pre_stop: Callable[[Pod, Container, str, float], Awaitable[float]] | None = None
    # after the pod's sandboxes were removed (volumes, network records)
    on_pod_removed: Callable[[Pod], Awaitable[None]] | None = None


def go_duration(seconds: float) -> str:
    """Go's time.Duration String() for whole seconds: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"

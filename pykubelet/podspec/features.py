"""``PodSpecFeatures``: the three pod-spec parts, built together and plugged into a worker.

- ``ContainerSetup``: volumes, mounts, securityContext, downward API, termination files;
- ``LifecycleHooks``: postStart and preStop;
- ``ProbeVerdicts``: the prober, whose verdicts wake the pod's worker or ask it to kill.

The composition root plugs their methods into ``WorkerDeps`` and ``RuntimeConfigBuilder``;
``connect`` hands the probe verdicts to the pod manager. None of the
parts calls the runtime to start or stop a container: only the pod's worker does.
"""

from __future__ import annotations

from collections.abc import Callable

from pykubelet.core.clock import Clock
from pykubelet.pods.events import EventSink
from pykubelet.pods.types import KillRequest
from pykubelet.podspec.api_objects import ConfigSource
from pykubelet.podspec.container_setup import ContainerSetup
from pykubelet.podspec.downward import NodeAllocatable
from pykubelet.podspec.lifecycle_hooks import LifecycleHooks
from pykubelet.podspec.prober import ProbeRecorder
from pykubelet.podspec.probing import ProbeVerdicts
from pykubelet.runtime.protocol import ImageService, Runtime
from pykubelet.runtime.types import RuntimeFeatures

__all__ = ["PodSpecFeatures"]


class PodSpecFeatures:
    """Construct once in the composition root; ``close()`` at shutdown."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        images: ImageService,
        clock: Clock,
        pods_dir: str,
        node_name: str,
        host_ip: str,
        allocatable: NodeAllocatable,
        recorder: ProbeRecorder | None = None,
        config_source: ConfigSource | None = None,
        events: EventSink | None = None,
    ) -> None:
        self.setup = ContainerSetup(
            images=images,
            pods_dir=pods_dir,
            node_name=node_name,
            host_ip=host_ip,
            allocatable=allocatable,
            config_source=config_source,
            features=RuntimeFeatures.of(runtime),
        )
        self.hooks = LifecycleHooks(runtime, clock)
        self.probes = ProbeVerdicts(runtime, clock, recorder, events)

    def connect(
        self, *, wake: Callable[[str], None], kill: Callable[[str, KillRequest], None]
    ) -> None:
        self.probes.connect(wake=wake, kill=kill)

    async def cleanup_orphans(self, desired_uids: set[str]) -> list[str]:
        return await self.setup.cleanup_orphans(desired_uids)

    async def close(self) -> None:
        await self.probes.close()

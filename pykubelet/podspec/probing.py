"""Probe verdicts as inputs to the pod workers.

``ProbeVerdicts`` owns the node's ``Prober``: containers are watched when their worker sees
them running and unwatched when it sees them exit. A readiness change, or any success, wakes
the pod's worker so status is republished; a liveness or startup failure becomes a
``KillRequest`` for the pod's worker, which stops the container (after its preStop hook,
within the probe's grace period) and lets ``restartPolicy`` decide. Nothing here calls the
runtime to change a container.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pykubelet.api import Container, Pod
from pykubelet.core.clock import Clock
from pykubelet.core.errors import InvalidInput
from pykubelet.pods.types import KillRequest
from pykubelet.podspec.actions import ExecRunner, ProbeResult, ProbeTarget
from pykubelet.podspec.prober import (
    ProbeChange,
    Prober,
    ProbeRecorder,
    ProbeType,
    container_probes,
)
from pykubelet.runtime.types import ContainerStatus, SandboxStatus

__all__ = ["ProbeVerdicts", "probe_target"]

log = logging.getLogger(__name__)

Wake = Callable[[str], None]
Kill = Callable[[str, KillRequest], None]


def probe_target(container_id: str, sandbox: SandboxStatus) -> ProbeTarget:
    return ProbeTarget(container_id=container_id, netns_path=sandbox.netns_path, pod_ip=sandbox.ip)


def _ignore_wake(uid: str) -> None:
    return None


def _ignore_kill(uid: str, request: KillRequest) -> None:
    log.warning("pod %s: no worker to carry out: %s", uid, request.message)


class ProbeVerdicts:
    """Construct once; ``connect`` to the pod manager once it exists; ``close`` at shutdown."""

    def __init__(
        self, runner: ExecRunner, clock: Clock, recorder: ProbeRecorder | None = None
    ) -> None:
        self.prober = Prober(runner, clock, self, recorder)
        self._wake: Wake = _ignore_wake
        self._kill: Kill = _ignore_kill

    def connect(self, *, wake: Wake, kill: Kill) -> None:
        """The pod manager's ``wake(uid)`` and ``kill_container(uid, request)``."""
        self._wake = wake
        self._kill = kill

    async def on_container_running(
        self, pod: Pod, container: Container, status: ContainerStatus, sandbox: SandboxStatus
    ) -> None:
        try:
            specs = container_probes(container, f"container {container.name!r}")
        except InvalidInput as e:  # an adopted container from an older, broken spec
            log.warning("pod %s: not probing %s: %s", pod.full_name, container.name, e)
            return
        if specs:
            self.prober.watch(pod, container, probe_target(status.id, sandbox), specs)

    async def on_container_exited(self, pod: Pod, container_id: str) -> None:
        await self.prober.unwatch(container_id)

    def started(self, container_id: str) -> bool | None:
        """For the status builder: False while a startup probe has not succeeded."""
        if not self.prober.watching(container_id):
            return None
        return self.prober.started(container_id)

    def readiness(self, container_id: str) -> bool | None:
        """For the status builder: None without readiness/startup probes (ready when running)."""
        if self.prober.result(container_id, ProbeType.READINESS) is None and (
            self.prober.result(container_id, ProbeType.STARTUP) is None
        ):
            return None
        return self.prober.ready(container_id)

    def probe_changed(self, change: ProbeChange) -> None:
        if change.probe_type is ProbeType.READINESS or change.result is ProbeResult.SUCCESS:
            self._wake(change.pod_uid)
            return
        kind = change.probe_type.value.lower()
        self._kill(
            change.pod_uid,
            KillRequest(
                container_id=change.container_id,
                message=f"Container {change.container_name} failed {kind} probe, will be restarted",
                grace_s=change.grace_period_s,
            ),
        )

    async def close(self) -> None:
        await self.prober.close()

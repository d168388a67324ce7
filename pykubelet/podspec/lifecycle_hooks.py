"""postStart and preStop as the pod worker's callbacks.

A failed postStart hook is reported back (the worker kills the container, as upstream does);
preStop runs before the worker stops a container and returns the grace period left for the
stop itself. The hooks exec into the container or call it over the network; they never stop
or start containers.
"""

from __future__ import annotations

import logging

from pykubelet.api import Container, Pod
from pykubelet.core.clock import Clock
from pykubelet.podspec.actions import ProbeTarget
from pykubelet.podspec.hooks import HookFailed, container_hook, run_post_start, run_pre_stop
from pykubelet.podspec.probing import probe_target
from pykubelet.runtime.errors import RuntimeFailure
from pykubelet.runtime.protocol import Runtime

__all__ = ["LifecycleHooks"]

log = logging.getLogger(__name__)


class LifecycleHooks:
    def __init__(self, runtime: Runtime, clock: Clock) -> None:
        self._runtime = runtime
        self._clock = clock

    async def _target(self, container_id: str) -> ProbeTarget:
        status = await self._runtime.container_status(container_id)
        sandbox = await self._runtime.pod_sandbox_status(status.sandbox_id)
        return probe_target(container_id, sandbox)

    async def post_start(self, pod: Pod, container: Container, container_id: str) -> str | None:
        """Run the postStart hook; the failure to report, or None."""
        hook = container_hook(container, "postStart")
        if hook is None:
            return None
        try:
            await run_post_start(
                hook,
                await self._target(container_id),
                self._runtime,
                self._clock,
                pod=pod,
                container_name=container.name,
            )
        except HookFailed as e:
            return f"{e.reason}: {e}"
        return None

    async def pre_stop(
        self, pod: Pod, container: Container, container_id: str, grace_s: float
    ) -> float:
        hook = container_hook(container, "preStop")
        if hook is None:
            return grace_s
        try:
            target = await self._target(container_id)
        except RuntimeFailure:
            return grace_s
        return await run_pre_stop(
            hook,
            target,
            self._runtime,
            self._clock,
            pod=pod,
            container_name=container.name,
            grace_period_s=grace_s,
        )

"""The runtime's part of the node's Ready condition, as the Go kubelet's ``runtimeState``.

Every 5 s the runtime's health (CRI ``Status``) is asked; ``errors()`` gives the Ready
condition's messages: none yet ("status check may not have completed yet"), no healthy answer for
30 s ("container runtime is down"), or the pod network not ready (with the runtime's reason).
"""

from __future__ import annotations

from pykubelet.core.clock import Clock
from pykubelet.runtime.protocol import RuntimeLifecycle
from pykubelet.runtime.types import RuntimeHealth

__all__ = ["RuntimeHealthWatch"]

CHECK_PERIOD_S = 5.0
DOWN_AFTER_S = 30.0  # upstream's baseRuntimeSyncThreshold


class RuntimeHealthWatch:
    def __init__(
        self,
        runtime: RuntimeLifecycle,
        clock: Clock,
        *,
        period_s: float = CHECK_PERIOD_S,
        down_after_s: float = DOWN_AFTER_S,
    ) -> None:
        self._runtime = runtime
        self._clock = clock
        self._period_s = period_s
        self._down_after_s = down_after_s
        self._last_ok: float | None = None
        self._network: RuntimeHealth | None = None  # the last answer, when its network is down

    async def check(self) -> None:
        health = await self._runtime.health()  # never raises: a dead runtime is "not ready"
        if health.runtime_ready:
            self._last_ok = self._clock.monotonic()
            self._network = None if health.network_ready else health

    async def run(self) -> None:
        while True:
            await self.check()
            await self._clock.sleep(self._period_s)

    def errors(self) -> list[str]:
        if self._last_ok is None:
            return ["container runtime status check may not have completed yet"]
        errs = []
        if self._clock.monotonic() - self._last_ok > self._down_after_s:
            errs.append("container runtime is down")
        if self._network is not None:
            errs.append(
                "container runtime network not ready: NetworkReady=false "
                f"reason:{self._network.reason} message:{self._network.message}"
            )
        return errs

"""Per-container probe loops: thresholds, startup gating, results to the worker and to metrics.

``Prober`` runs one task per (container, probe type), so a probe that hangs (bounded by its own
``timeoutSeconds``) never delays another container's probes. Semantics follow upstream's prober
worker: initial results are readiness=failure, liveness=success, startup=unknown; a result takes
effect after ``successThreshold``/``failureThreshold`` consecutive runs; liveness and readiness are
not run until the startup probe has succeeded, after which startup stops; a liveness or startup
failure puts the loop on hold until the worker restarts the container (a new container id, a new
``watch``). Every run is counted through ``ProbeRecorder`` (``prober_probe_total``); every change of
an effective result is reported once through ``ProbeListener``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Protocol

from pykubelet.api import Container, Pod
from pykubelet.core.clock import Clock
from pykubelet.podspec.actions import (
    ExecRunner,
    ProbeResult,
    ProbeSpec,
    ProbeTarget,
    parse_probe,
    run_handler,
)

__all__ = [
    "ProbeChange",
    "ProbeListener",
    "ProbeRecorder",
    "ProbeType",
    "Prober",
    "container_probes",
]

log = logging.getLogger(__name__)


class ProbeType(enum.Enum):
    LIVENESS = "Liveness"  # the values are prober_probe_total's ``probe_type`` label
    READINESS = "Readiness"
    STARTUP = "Startup"


_INITIAL = {
    ProbeType.LIVENESS: ProbeResult.SUCCESS,
    ProbeType.READINESS: ProbeResult.FAILURE,
    ProbeType.STARTUP: ProbeResult.UNKNOWN,
}


class ProbeRecorder(Protocol):
    """Counts probe runs (the stats helper's ``agent_metrics.record_probe``)."""

    def record_probe(
        self,
        *,
        probe_type: str,
        result: str,
        namespace: str,
        pod: str,
        pod_uid: str,
        container: str,
    ) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeChange:
    """An effective probe result changed. For liveness/startup failures the worker restarts the
    container, stopping it within ``grace_period_s`` (probe-level, else the pod's)."""

    pod: Pod
    container_name: str
    container_id: str
    probe_type: ProbeType
    result: ProbeResult
    output: str
    grace_period_s: float

    @property
    def pod_uid(self) -> str:
        return self.pod.meta.uid


class ProbeListener(Protocol):
    def probe_changed(self, change: ProbeChange) -> None:
        """Called on the event loop; must not block (the worker queues a sync)."""
        ...


def container_probes(container: Container, where: str) -> dict[ProbeType, ProbeSpec]:
    """Parse a container's probes; raises ``InvalidInput`` naming the field."""
    out: dict[ProbeType, ProbeSpec] = {}
    for ptype, raw, key in (
        (ProbeType.STARTUP, container.startup_probe, "startupProbe"),
        (ProbeType.LIVENESS, container.liveness_probe, "livenessProbe"),
        (ProbeType.READINESS, container.readiness_probe, "readinessProbe"),
    ):
        if raw is not None:
            out[ptype] = parse_probe(
                raw,
                container,
                f"{where}.{key}",
                needs_single_success=ptype is not ProbeType.READINESS,
            )
    return out


@dataclass(slots=True)
class _Watch:
    pod: Pod
    container_name: str
    target: ProbeTarget
    specs: dict[ProbeType, ProbeSpec]
    results: dict[ProbeType, ProbeResult]
    started: asyncio.Event
    tasks: list[asyncio.Task[None]]


class Prober:
    """Owns every probe task of the node. ``watch`` when a container starts, ``unwatch`` when it
    stops; ``close`` at shutdown. Queries never block."""

    def __init__(
        self,
        runner: ExecRunner,
        clock: Clock,
        listener: ProbeListener,
        recorder: ProbeRecorder | None = None,
    ) -> None:
        self._runner = runner
        self._clock = clock
        self._listener = listener
        self._recorder = recorder
        self._watches: dict[str, _Watch] = {}

    def watch(
        self,
        pod: Pod,
        container: Container,
        target: ProbeTarget,
        specs: dict[ProbeType, ProbeSpec] | None = None,
    ) -> None:
        """Start probing a running container (idempotent per container id)."""
        if target.container_id in self._watches:
            return
        if specs is None:
            specs = container_probes(container, f"container {container.name!r}")
        started = asyncio.Event()
        if ProbeType.STARTUP not in specs:
            started.set()
        w = _Watch(
            pod=pod,
            container_name=container.name,
            target=target,
            specs=specs,
            results={t: _INITIAL[t] for t in specs},
            started=started,
            tasks=[],
        )
        self._watches[target.container_id] = w
        loop = asyncio.get_running_loop()
        for ptype, spec in specs.items():
            w.tasks.append(
                loop.create_task(
                    self._loop(w, ptype, spec),
                    name=f"probe {ptype.value} {pod.full_name} {container.name}",
                )
            )

    def ready(self, container_id: str) -> bool:
        """The container's readiness: true without a readiness probe once started."""
        w = self._watches.get(container_id)
        if w is None:
            return False
        if not w.started.is_set():
            return False
        return w.results.get(ProbeType.READINESS, ProbeResult.SUCCESS) is ProbeResult.SUCCESS

    def watching(self, container_id: str) -> bool:
        return container_id in self._watches

    def started(self, container_id: str) -> bool:
        w = self._watches.get(container_id)
        return w is not None and w.started.is_set()

    def result(self, container_id: str, probe_type: ProbeType) -> ProbeResult | None:
        w = self._watches.get(container_id)
        return None if w is None else w.results.get(probe_type)

    async def unwatch(self, container_id: str) -> None:
        w = self._watches.pop(container_id, None)
        if w is None:
            return
        for t in w.tasks:
            t.cancel()
        await asyncio.gather(*w.tasks, return_exceptions=True)

    async def close(self) -> None:
        for cid in list(self._watches):
            await self.unwatch(cid)

    async def _loop(self, w: _Watch, ptype: ProbeType, spec: ProbeSpec) -> None:
        try:
            await self._probe_forever(w, ptype, spec)
        except asyncio.CancelledError:
            raise
        except Exception:  # supervision point: a broken probe loop must not take the pod down
            log.exception("probe loop %s of %s crashed", ptype.value, w.pod.full_name)

    async def _probe_forever(self, w: _Watch, ptype: ProbeType, spec: ProbeSpec) -> None:
        if ptype is not ProbeType.STARTUP:
            await w.started.wait()
        if spec.initial_delay_s:
            await self._clock.sleep(spec.initial_delay_s)
        last: ProbeResult | None = None
        run = 0
        while True:
            outcome = await run_handler(
                spec.handler, w.target, self._runner, timeout_s=spec.timeout_s
            )
            self._record(w, ptype, outcome.result)
            if outcome.result is last:
                run += 1
            else:
                last, run = outcome.result, 1
            threshold = (
                spec.failure_threshold
                if outcome.result is ProbeResult.FAILURE
                else spec.success_threshold
            )
            if run >= threshold and w.results[ptype] is not outcome.result:
                w.results[ptype] = outcome.result
                self._changed(w, ptype, spec, outcome.result, outcome.output)
            if ptype is ProbeType.STARTUP and w.results[ptype] is ProbeResult.SUCCESS:
                w.started.set()
                return  # startup probes stop once the container has started
            if ptype is not ProbeType.READINESS and w.results[ptype] is ProbeResult.FAILURE:
                return  # on hold until the worker restarts the container
            await self._clock.sleep(spec.period_s)

    def _record(self, w: _Watch, ptype: ProbeType, result: ProbeResult) -> None:
        if self._recorder is None:
            return
        self._recorder.record_probe(
            probe_type=ptype.value,
            result=result.value,
            namespace=w.pod.meta.namespace,
            pod=w.pod.meta.name,
            pod_uid=w.pod.meta.uid,
            container=w.container_name,
        )

    def _changed(
        self, w: _Watch, ptype: ProbeType, spec: ProbeSpec, result: ProbeResult, output: str
    ) -> None:
        grace = spec.termination_grace_period_s
        if grace is None:
            grace = w.pod.spec.termination_grace_period_s
        if result is ProbeResult.FAILURE and ptype is not ProbeType.READINESS:
            log.info(
                "container %s of %s failed %s probe, will be restarted: %s",
                w.container_name,
                w.pod.full_name,
                ptype.value.lower(),
                output.strip(),
            )
        self._listener.probe_changed(
            ProbeChange(
                pod=w.pod,
                container_name=w.container_name,
                container_id=w.target.container_id,
                probe_type=ptype,
                result=result,
                output=output,
                grace_period_s=grace,
            )
        )

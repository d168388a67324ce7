"""One ``PodWorker`` per pod: the only code that calls the runtime for that pod.

Phases SYNCING → TERMINATING → TERMINATED, as upstream's pod workers. A sync observes the
runtime, takes the next steps (sandbox, init containers in order each to success, then app
containers, restarts by ``restartPolicy`` behind the crash-loop back-off, image pulls behind
the image back-off), and publishes the status. Between syncs the worker sleeps until woken
(a runtime change seen by the relister, a new spec, a probe result) or until a back-off ends;
it never polls. Its own failures are logged and retried with back-off: no pod can take the
agent down.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import replace

from pykubelet.api import Container, ContainerStateWaiting, Pod
from pykubelet.core.errors import InvalidInput
from pykubelet.pods.events import NORMAL, WARNING
from pykubelet.pods.images import ensure_image
from pykubelet.pods.kill import kill_pod, stop_container, stop_containers
from pykubelet.pods.runtime_config import ANNOTATION_HASH, LABEL_POD_UID, container_hash
from pykubelet.pods.status_builder import build_pod_status
from pykubelet.pods.termination import (
    TERMINATION_MESSAGE_ANNOTATION,
    fallback_message,
    read_message_file,
)
from pykubelet.pods.types import KillRequest, WorkerPhase
from pykubelet.pods.worker_deps import WorkerCounters, WorkerDeps, go_duration
from pykubelet.runtime.errors import (
    CreateContainerError,
    RuntimeFailure,
    SandboxNotFound,
)
from pykubelet.runtime.types import (
    ContainerState,
    ContainerStatus,
    SandboxConfig,
    SandboxState,
    SandboxStatus,
)

__all__ = ["PodWorker", "WorkerCounters", "WorkerDeps", "go_duration"]


log = logging.getLogger(__name__)

DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
CONFIG_RETRY_S = 10.0
MAX_SYNC_RETRY_S = 60.0

History = dict[str, list[ContainerStatus]]


class PodWorker:
    def __init__(
        self, pod: Pod, deps: WorkerDeps, *, after: asyncio.Future[None] | None = None
    ) -> None:
        self.pod = pod
        self._after = after  # a previous worker of the same UID still stopping its pod
        self.phase = WorkerPhase.SYNCING
        self.done = asyncio.Event()
        self._deps = deps
        self._wake = asyncio.Event()
        self._terminate = False
        self._grace_override: float | None = None
        self._keep_status = False
        self._kills: dict[str, KillRequest] = {}
        self._sandbox: SandboxStatus | None = None
        self._sandbox_config: SandboxConfig | None = None
        self._waiting: dict[str, ContainerStateWaiting] = {}
        self._terminal = False
        self._deadline_exceeded = False
        self._log_messages: dict[str, str] = {}  # container id -> FallbackToLogsOnError message
        self._seen_mono = deps.clock.monotonic()
        self._start_recorded = False
        self._announced: set[str] = set()  # container ids reported to on_container_running
        self._prepared = False
        self._acted_at = float("-inf")  # when this worker last asked the runtime to act
        self._next_attempt: dict[str, int] = {}  # first attempt in a replacement sandbox
        self.running_containers = 0

    # ----- called by the manager -----

    def update(self, pod: Pod) -> None:
        self.pod = pod
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def terminate(self, grace_s: float | None = None, *, keep_status: bool = False) -> None:
        """Stop the pod (once). ``keep_status``: publish its final status and keep it after
        the sandbox is gone (an API pod being deleted: the status must reach the API server
        before the pod is forgotten)."""
        if self._terminate:
            if grace_s is not None and (
                self._grace_override is None or grace_s < self._grace_override
            ):
                self._grace_override = grace_s  # a shorter grace period wins, as upstream
            self._keep_status = self._keep_status and keep_status
            return
        self._terminate = True
        self._grace_override = grace_s
        self._keep_status = keep_status
        self.wake()

    def request_kill(self, request: KillRequest) -> None:
        """Probe verdicts arrive here; the runtime is called from the worker's own loop."""
        self._kills[request.container_id] = request
        self.wake()

    @property
    def running(self) -> bool:
        return self.running_containers > 0

    # ----- the loop -----

    async def run(self) -> None:
        failures = 0
        try:
            if self._after is not None:
                # the same pod came back while its previous worker was stopping it: let that
                # finish first so the two never act on the same sandbox
                await asyncio.gather(self._after, return_exceptions=True)
            while not self._terminate:
                self._wake.clear()
                delay: float | None
                try:
                    delay = await self._sync()
                    failures = 0
                except Exception:  # supervision point: a pod's failure stays with the pod
                    failures += 1
                    self._deps.counters.sync_errors += 1
                    # jittered, so pods failing together (a runtime hiccup) do not retry in step
                    delay = min(2.0 ** (failures - 1), MAX_SYNC_RETRY_S) * random.uniform(0.5, 1.0)
                    log.exception(
                        "sync of pod %s failed; retrying in %.1fs", self.pod.full_name, delay
                    )
                if not self._terminate:
                    await self._wait(delay)
            self.phase = WorkerPhase.TERMINATING
            await self._kill_pod_supervised()
        finally:
            self.phase = WorkerPhase.TERMINATED
            self.done.set()

    async def _wait(self, delay: float | None) -> None:
        if delay is None:
            await self._wake.wait()
            return
        sleeper = asyncio.ensure_future(self._deps.clock.sleep(max(delay, 0.0)))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    # ----- observing -----

    async def _observe(self, *, fresh: bool = False) -> History:
        """The pod's containers by name, newest attempt first. ``fresh`` bypasses the
        relister's cache (after this worker acted, the cache may predate the action)."""
        rt = self._deps.runtime
        if self._sandbox is None:
            mine = list(await rt.list_pod_sandboxes({LABEL_POD_UID: self.pod.uid}))
            if mine:
                self._sandbox = max(mine, key=lambda s: (s.attempt, s.created_at))
                log.info("pod %s: adopted sandbox %s", self.pod.full_name, self._sandbox.id)
        elif not self._terminal:
            try:
                self._sandbox = await rt.pod_sandbox_status(self._sandbox.id)
            except SandboxNotFound:
                log.warning("pod %s: sandbox %s disappeared", self.pod.full_name, self._sandbox.id)
                self._sandbox = None
                self._sandbox_config = None
        if self._sandbox is None:
            return {}
        history: History = {}
        cache = self._deps.cache
        listed = None
        if cache is not None and not fresh:
            listed = cache.containers(self._sandbox.id, newer_than=self._acted_at)
        if listed is None:
            listed = list(await rt.list_containers(self._sandbox.id))
        for c in listed:
            history.setdefault(c.name, []).append(c)
        for name, attempts in history.items():
            attempts.sort(key=lambda c: (c.attempt, c.created_at), reverse=True)
            spec = self.pod.spec.container(name)
            if spec is not None:
                fallback = spec.termination_message_policy == "FallbackToLogsOnError"
                attempts[:2] = [await self._with_message(c, fallback) for c in attempts[:2]]
        return history

    async def _with_message(self, c: ContainerStatus, fallback_to_logs: bool) -> ContainerStatus:
        """An exited container's message: what it wrote to its terminationMessagePath, else
        (FallbackToLogsOnError, failed) the tail of its log. Read once per container."""
        if c.state is not ContainerState.EXITED or c.message:
            return c
        if c.id not in self._log_messages:
            path = c.annotations.get(TERMINATION_MESSAGE_ANNOTATION, "")
            message = await asyncio.to_thread(read_message_file, path) if path else ""
            if not message and fallback_to_logs and c.exit_code != 0:
                message = await asyncio.to_thread(fallback_message, c.log_path)
            self._log_messages[c.id] = message
        return replace(c, message=self._log_messages[c.id])

    async def _ensure_sandbox(self, history: History) -> History:
        sb = self._sandbox
        if sb is not None and sb.state is SandboxState.READY:
            return history
        attempt = 0 if sb is None else sb.attempt + 1
        if sb is not None:
            log.warning(
                "pod %s: sandbox %s is not ready; creating a new one", self.pod.full_name, sb.id
            )
            # restart counts carry over to the new sandbox, as upstream's do after a reboot
            for name, attempts in history.items():
                self._next_attempt[name] = attempts[0].attempt + 1
            await self._deps.runtime.stop_pod_sandbox(sb.id)
            await self._deps.runtime.remove_pod_sandbox(sb.id)
            # prepare again (as upstream's every sync does): the new sandbox has new IPs for
            # status.podIP env and downward API files
            self._prepared = False
        config = self._deps.builder.sandbox(self.pod, attempt)
        sid = await self._deps.runtime.run_pod_sandbox(config)
        self._sandbox_config = config
        self._sandbox = await self._deps.runtime.pod_sandbox_status(sid)
        return {}

    # ----- syncing -----

    async def _sync(self) -> float | None:
        history = await self._observe()
        if self._terminal:
            self._publish(history)
            return None
        left = self._deadline_left()
        if left is not None and left <= 0:
            await self._fail_deadline_exceeded()
            self._publish(await self._observe())
            return None
        if self._sandbox is not None and self._sandbox.state is not SandboxState.READY:
            # a stopped sandbox whose pod had finished (before an agent restart) stays finished
            if self._publish(history) in ("Succeeded", "Failed"):
                self._terminal = True
                return None
        history = await self._ensure_sandbox(history)
        self._waiting = {}
        wakes: list[float] = []
        if await self._carry_out_kills(history):
            self._acted_at = self._deps.clock.monotonic()
            history = await self._observe(fresh=True)
        acted = await self._step(history, wakes)
        if acted:
            self._acted_at = self._deps.clock.monotonic()
            history = await self._observe(fresh=True)
        await self._announce(history)
        phase = self._publish(history)
        if phase in ("Succeeded", "Failed") and self._sandbox is not None:
            self._terminal = True
            # sidecars are stopped after the app containers finished, then the sandbox
            await self._stop_sidecars()
            await self._deps.runtime.stop_pod_sandbox(self._sandbox.id)
            return None
        if left is not None:
            wakes.append(left)  # wake exactly when activeDeadlineSeconds runs out
        return min(wakes) if wakes else None

    async def _carry_out_kills(self, history: History) -> bool:
        """Stop the containers probes asked to kill, if they still run; True if any was."""
        kills, self._kills = self._kills, {}
        running = {
            c.id: c
            for attempts in history.values()
            for c in attempts[:1]
            if c.state is ContainerState.RUNNING
        }
        acted = False
        for request in kills.values():
            c = running.get(request.container_id)
            if c is None:
                continue  # already gone: nothing to do, the restart policy has taken over
            log.info("pod %s: %s", self.pod.full_name, request.message)
            grace = request.grace_s
            if grace is None:
                grace = self.pod.spec.termination_grace_period_s
            await self._kill_container(c, grace, request.message)
            acted = True
        return acted

    async def _kill_container(self, c: ContainerStatus, grace_s: float, why: str = "") -> None:
        self._event(NORMAL, "Killing", why or f"Stopping container {c.name}", c.name)
        await stop_container(self._deps, self.pod, c, grace_s)

    async def _stop_sidecars(self) -> None:
        if self._sandbox is None or not any(c.is_sidecar for c in self.pod.spec.init_containers):
            return
        containers = await self._deps.runtime.list_containers(self._sandbox.id)
        await stop_containers(
            self._deps, self.pod, containers, self.pod.spec.termination_grace_period_s
        )

    def _event(self, type_: str, reason: str, message: str, container: str = "") -> None:
        field_path = ""
        if container:
            group = "initContainers" if self.pod.spec.is_init(container) else "containers"
            field_path = f"spec.{group}{{{container}}}"
        self._deps.events.event(self.pod, type_, reason, message, field_path=field_path)

    def _deadline_left(self) -> float | None:
        """Seconds until ``activeDeadlineSeconds`` (counted from when this node took the pod,
        upstream's status.startTime), or None without a deadline."""
        deadline = self.pod.spec.active_deadline_s
        if deadline is None:
            return None
        return deadline - (self._deps.clock.monotonic() - self._seen_mono)

    async def _fail_deadline_exceeded(self) -> None:
        """Upstream: the pod is killed and fails with reason DeadlineExceeded."""
        log.info("pod %s: %s", self.pod.full_name, DEADLINE_MESSAGE)
        self._deadline_exceeded = True
        self._terminal = True
        if self._sandbox is None:
            return
        containers = await self._deps.runtime.list_containers(self._sandbox.id)
        await stop_containers(
            self._deps, self.pod, containers, self.pod.spec.termination_grace_period_s
        )
        await self._deps.runtime.stop_pod_sandbox(self._sandbox.id)

    async def _announce(self, history: History) -> None:
        d = self._deps
        running = {
            c.id: c
            for attempts in history.values()
            for c in attempts[:1]
            if c.state is ContainerState.RUNNING
        }
        for cid in list(self._announced - set(running)):
            self._announced.discard(cid)
            if d.on_container_exited is not None:
                await d.on_container_exited(self.pod, cid)
        for cid, c in running.items():
            spec = self.pod.spec.container(c.name)
            if cid in self._announced or spec is None or self._sandbox is None:
                continue
            self._announced.add(cid)
            if d.on_container_running is not None:
                await d.on_container_running(self.pod, spec, c, self._sandbox)

    async def _prepare(self, wakes: list[float]) -> bool:
        if self._prepared or self._deps.prepare_pod is None or self._sandbox is None:
            return True
        try:
            await self._deps.prepare_pod(self.pod, self._sandbox)
        except InvalidInput as e:
            self._event(WARNING, "FailedMount", str(e))
            for c in self.pod.spec.all_containers():
                self._waiting[c.name] = ContainerStateWaiting(
                    reason="CreateContainerConfigError", message=str(e)
                )
            wakes.append(CONFIG_RETRY_S)
            return False
        self._prepared = True
        return True

    async def _step(self, history: History, wakes: list[float]) -> bool:
        """Start or restart what should run now; True if the runtime was asked to act."""
        if not await self._prepare(wakes):
            return False
        spec = self.pod.spec
        # once an app container has run, initialization is over: sidecars that exit are
        # restarted beside the app containers instead of holding them back
        initialized = any(history.get(c.name) for c in spec.containers)
        acted = False
        for c in spec.init_containers:
            latest = history.get(c.name, [None])[0]
            if c.is_sidecar:
                started_now = await self._keep_sidecar(c, latest, history, wakes)
                acted |= started_now
                if initialized or (not started_now and self._sidecar_started(latest)):
                    continue
                return acted
            if initialized:
                continue
            if latest is None:
                first = self._next_attempt.get(c.name, 0)
                return acted | await self._start(c, first, history, wakes, "initContainers")
            if latest.state is ContainerState.EXITED and latest.exit_code == 0:
                continue
            if latest.state is ContainerState.CREATED:
                await self._deps.runtime.start_container(latest.id)
                return True
            if latest.state is ContainerState.EXITED and spec.restart_policy != "Never":
                return acted | await self._start(
                    c, latest.attempt + 1, history, wakes, "initContainers"
                )
            return acted  # running, or failed for good (restartPolicy Never)
        for c in spec.containers:
            latest = history.get(c.name, [None])[0]
            if latest is None:
                first = self._next_attempt.get(c.name, 0)
                acted |= await self._start(c, first, history, wakes, "containers")
            elif latest.state is ContainerState.CREATED:
                await self._deps.runtime.start_container(latest.id)
                acted = True
            elif latest.state is ContainerState.EXITED and _should_restart(
                spec.restart_policy, latest.exit_code
            ):
                acted |= await self._start(c, latest.attempt + 1, history, wakes, "containers")
            elif latest.state is ContainerState.RUNNING and self._definition_changed(c, latest):
                # upstream: the spec hash changed (an image set through the API): stop it and
                # start the new definition now, whatever restartPolicy says, without back-off
                await self._kill_container(
                    latest,
                    self.pod.spec.termination_grace_period_s,
                    f"Container {c.name} definition changed, will be restarted",
                )
                acted = True
                acted |= await self._start(
                    c, latest.attempt + 1, history, wakes, "containers", backoff=False
                )
        return acted

    def _definition_changed(self, c: Container, running: ContainerStatus) -> bool:
        """Containers created before the hash existed (no annotation) are left alone."""
        was = running.annotations.get(ANNOTATION_HASH)
        return was is not None and was != container_hash(self.pod, c.name)

    async def _keep_sidecar(
        self,
        c: Container,
        latest: ContainerStatus | None,
        history: History,
        wakes: list[float],
    ) -> bool:
        """Start a sidecar, or restart it whenever it exited (whatever the pod's policy)."""
        if latest is None:
            first = self._next_attempt.get(c.name, 0)
            return await self._start(c, first, history, wakes, "initContainers")
        if latest.state is ContainerState.CREATED:
            await self._deps.runtime.start_container(latest.id)
            return True
        if latest.state is ContainerState.EXITED:
            return await self._start(c, latest.attempt + 1, history, wakes, "initContainers")
        return False

    def _sidecar_started(self, latest: ContainerStatus | None) -> bool:
        """The next init container waits until the sidecar runs and its startup probe, if
        any, succeeded (upstream 1.29)."""
        return (
            latest is not None
            and latest.state is ContainerState.RUNNING
            and self._deps.started(latest.id) is not False
        )

    async def _start(
        self,
        c: Container,
        attempt: int,
        history: History,
        wakes: list[float],
        group: str,
        *,
        backoff: bool = True,
    ) -> bool:
        d = self._deps
        previous = history.get(c.name, [None])[0]
        key = f"{self.pod.uid}/{c.name}"
        if previous is not None and backoff:
            if d.crash_backoff.in_backoff_since(key, previous.finished_at):
                m = self.pod.meta
                self._waiting[c.name] = ContainerStateWaiting(
                    reason="CrashLoopBackOff",
                    message=f"back-off {go_duration(d.crash_backoff.get(key))} restarting failed "
                    f"container={c.name} pod={m.name}_{m.namespace}({m.uid})",
                )
                wakes.append(d.crash_backoff.remaining_s(key, previous.finished_at))
                self._event(WARNING, "BackOff", "Back-off restarting failed container", c.name)
                return False
            d.crash_backoff.next(key, previous.finished_at)
        if not await self._ensure_image(c, wakes):
            return False
        index = [x.name for x in getattr(self.pod.spec, _ATTR[group])].index(c.name)
        try:
            config = d.builder.container(self.pod, c, attempt, f"spec.{group}[{index}]")
            if d.prepare_container is not None:
                await d.prepare_container(config)
        except InvalidInput as e:
            self._waiting[c.name] = ContainerStateWaiting(
                reason="CreateContainerConfigError", message=str(e)
            )
            wakes.append(CONFIG_RETRY_S)
            return False
        assert self._sandbox is not None
        sandbox_config = self._sandbox_config or d.builder.sandbox(self.pod, self._sandbox.attempt)
        try:
            cid = await d.runtime.create_container(self._sandbox.id, config, sandbox_config)
            await d.runtime.start_container(cid)
        except CreateContainerError as e:
            self._waiting[c.name] = ContainerStateWaiting(
                reason="CreateContainerError", message=str(e)
            )
            self._event(WARNING, "Failed", f"Error: {e}", c.name)
            wakes.append(CONFIG_RETRY_S)
            return True
        except RuntimeFailure as e:
            self._waiting[c.name] = ContainerStateWaiting(
                reason="RunContainerError", message=str(e)
            )
            self._event(WARNING, "Failed", f"Error: {e}", c.name)
            wakes.append(CONFIG_RETRY_S)
            return True
        if previous is not None:
            d.counters.container_restarts += 1
        # keep the newest dead attempt for lastState and `logs --previous`, as upstream's GC does
        for old in history.get(c.name, [])[1:]:
            await d.runtime.remove_container(old.id)
        self._event(NORMAL, "Created", f"Created container {c.name}", c.name)
        self._event(NORMAL, "Started", f"Started container {c.name}", c.name)
        if d.on_container_started is not None:
            failure = await d.on_container_started(self.pod, c, cid)
            if failure is not None:
                # upstream kills a container whose postStart hook failed; restartPolicy decides
                log.warning("pod %s: %s; killing the container", self.pod.full_name, failure)
                self._event(WARNING, "FailedPostStartHook", failure, c.name)
                started = await d.runtime.container_status(cid)
                await self._kill_container(
                    started,
                    self.pod.spec.termination_grace_period_s,
                    f"FailedPostStartHook: stopping container {c.name}",
                )
        return True

    async def _ensure_image(self, c: Container, wakes: list[float]) -> bool:
        d = self._deps
        got = await ensure_image(
            d.images,
            d.image_backoff,
            d.clock,
            d.pull_credentials,
            self.pod,
            c,
            lambda type_, reason, message: self._event(type_, reason, message, c.name),
            d.image_pull_gate,
        )
        if got.waiting is not None:
            self._waiting[c.name] = got.waiting
            wakes.append(got.retry_s)
        return got.waiting is None

    def _publish(self, history: History) -> str:
        d = self._deps
        status = build_pod_status(
            self.pod,
            history,
            self._waiting,
            runtime_name=d.runtime_name,
            readiness=d.readiness,
            started=d.started,
            host_ip=d.host_ip,
            pod_ip=(self._sandbox.ip if self._sandbox else "") or d.host_ip,
            start_time=d.clock.now(),
        )
        if self._deadline_exceeded:
            status = replace(
                status, phase="Failed", reason="DeadlineExceeded", message=DEADLINE_MESSAGE
            )
        d.statuses.set_pod_status(self.pod.uid, status)
        running = sum(1 for s in status.container_statuses if s.state.running is not None)
        self.running_containers = running
        if not self._start_recorded and running == len(self.pod.spec.containers):
            self._start_recorded = True
            d.counters.pod_start_durations_s.append(d.clock.monotonic() - self._seen_mono)
        return status.phase

    # ----- terminating -----

    async def _kill_pod_supervised(self) -> None:
        for attempt in range(3):
            try:
                await self._kill_pod()
                return
            except Exception:  # supervision point: keep trying to stop what we started
                log.exception(
                    "stopping pod %s failed (attempt %d)", self.pod.full_name, attempt + 1
                )
                await self._deps.clock.sleep(1.0)

    async def _kill_pod(self) -> None:
        grace = self._grace_override
        if grace is None:
            grace = self.pod.spec.termination_grace_period_s
        await kill_pod(self._deps, self.pod, grace, self._announced, final_status=self._final)
        self.running_containers = 0
        if not self._keep_status:
            self._deps.statuses.remove(self.pod.uid)

    async def _final(self) -> None:
        if self._keep_status:
            await self._publish_final()

    async def _publish_final(self) -> None:
        """The status the API server gets before the pod is deleted: every container
        terminated, as seen after the stop."""
        self._terminal = True
        self._publish(await self._observe(fresh=True))


_ATTR = {"initContainers": "init_containers", "containers": "containers"}


def _should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def running_pods(workers: Sequence[PodWorker]) -> int:
    return sum(1 for w in workers if w.running)

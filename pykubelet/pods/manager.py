"""The pod manager: desired pods by UID, admission, one worker per pod, and the relister.

Sources put ``PodUpdate`` values on ``updates``; the manager diffs them by UID (a changed
manifest is a new UID: the old pod is stopped, the new one started), admits new pods against
``maxPods`` and host ports as the kubelet does, and routes each pod to its ``PodWorker``. The
relister (upstream PLEG) lists the runtime's containers once a second and wakes only the
workers whose containers changed, so an idle node costs one list call per second. It
implements ``PodLister``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from pykubelet.api import Pod, PodStatus
from pykubelet.pods.admission import AdmissionNode, admission_failure
from pykubelet.pods.events import WARNING
from pykubelet.pods.kill import MIN_GRACE_S
from pykubelet.pods.ports import NODE_PORTS_MESSAGE, NODE_PORTS_REASON, host_port_conflict
from pykubelet.pods.runtime_config import ANNOTATION_GRACE, LABEL_MANAGED, LABEL_POD_UID
from pykubelet.pods.types import KillRequest, PodLayerStats, PodUpdate, UpdateOp
from pykubelet.pods.worker import PodWorker, WorkerDeps
from pykubelet.runtime.types import ContainerState

__all__ = ["PodManager"]

log = logging.getLogger(__name__)

PLEG_HEALTHY_S = 180.0
_TERMINAL = ("Succeeded", "Failed")  # upstream: "PLEG is not healthy ... threshold is 3m0s"


class PodManager:
    def __init__(
        self,
        deps: WorkerDeps,
        *,
        max_pods: int = 110,
        relist_s: float = 1.0,
        node_info: Callable[[], AdmissionNode | None] | None = None,
        on_pods_changed: Callable[[str], None] | None = None,
    ) -> None:
        self.updates: asyncio.Queue[PodUpdate] = asyncio.Queue()
        self.ready = asyncio.Event()
        self._deps = deps
        self._max_pods = max_pods
        self._relist_s = relist_s
        self._node_info = node_info  # node mode: the Node for resource/affinity/taint admission
        # node mode: told the source of each update that changed the desired pods (mirror pods)
        self._on_pods_changed = on_pods_changed or (lambda _source: None)
        self._pods: dict[str, Pod] = {}  # uid -> desired pod
        self._pods_version = 0  # bumped whenever _pods changes; see generation()
        self._by_source: dict[str, set[str]] = {}
        self._rejected: dict[str, PodStatus] = {}
        self._workers: dict[str, PodWorker] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._terminating: dict[asyncio.Task[None], str] = {}  # task -> pod uid
        self._last_relist = deps.clock.monotonic()
        self._seen_containers: dict[str, tuple[ContainerState, str]] = {}

    # ----- PodLister -----

    def list_pods(self) -> Sequence[Pod]:
        pods = [self._with_status(p) for p in self._pods.values()]
        return sorted(pods, key=lambda p: (p.meta.namespace, p.meta.name))

    def get_pod(self, namespace: str, name: str) -> Pod | None:
        for p in self._pods.values():
            if p.meta.namespace == namespace and p.meta.name == name:
                return self._with_status(p)
        return None

    def get_pod_by_uid(self, uid: str) -> Pod | None:
        p = self._pods.get(uid)
        return self._with_status(p) if p is not None else None

    def generation(self) -> int:
        """Changes whenever ``list_pods()`` would (both counters only grow, so their sum
        moves with either); lets the server skip re-encoding /pods."""
        return self._pods_version + self._deps.statuses.version

    def sync_loop_healthy(self) -> bool:
        return self._deps.clock.monotonic() - self._last_relist < PLEG_HEALTHY_S

    def _with_status(self, pod: Pod) -> Pod:
        status = self._rejected.get(pod.uid) or self._deps.statuses.get_pod_status(pod.uid)
        return pod.with_status(status or PodStatus(phase="Pending"))

    # ----- counters for the stats layer -----

    def stats(self) -> PodLayerStats:
        c = self._deps.counters
        return PodLayerStats(
            desired_pods=len(self._pods),
            running_pods=sum(1 for w in self._workers.values() if w.running),
            running_containers=sum(w.running_containers for w in self._workers.values()),
            pod_start_durations_s=tuple(c.pod_start_durations_s),
            container_restarts=c.container_restarts,
            sync_errors=c.sync_errors,
        )

    def wake(self, uid: str) -> None:
        """Ask a pod's worker to sync now (probe results, hooks)."""
        w = self._workers.get(uid)
        if w is not None:
            w.wake()

    def kill_container(self, uid: str, request: KillRequest) -> None:
        """A probe verdict: the pod's worker stops the container in its next sync."""
        w = self._workers.get(uid)
        if w is not None:
            w.request_kill(request)

    def worker(self, uid: str) -> PodWorker | None:
        return self._workers.get(uid)

    # ----- running -----

    async def run(self) -> None:
        relist = asyncio.create_task(self._relist_loop(), name="pleg")
        try:
            self.ready.set()
            while True:
                update = await self.updates.get()
                try:
                    self.handle(update)
                finally:
                    self.updates.task_done()
        finally:
            relist.cancel()
            await self._stop_workers_leaving_containers()

    def handle(self, update: PodUpdate) -> None:
        version = self._pods_version
        known = self._by_source.setdefault(update.source, set())
        incoming = {p.uid: p for p in update.pods}
        if update.op is UpdateOp.SET:
            removed = known - set(incoming)
        elif update.op is UpdateOp.REMOVE:
            removed, incoming = set(incoming) & known, {}
        else:
            removed = set()
        for uid in removed:
            self._remove(uid)
            known.discard(uid)
        new = [p for uid, p in incoming.items() if uid not in self._pods]
        for uid, pod in incoming.items():
            if uid in self._pods:
                if self._pods[uid] != pod:
                    self._pods[uid] = pod
                    self._pods_version += 1
                if uid in self._workers:
                    self._workers[uid].update(pod)
        for pod in new:
            known.add(pod.uid)
            self._add(pod)
        for uid, pod in incoming.items():
            if pod.meta.deletion_timestamp:
                self._delete_gracefully(uid, pod)
        if self._pods_version != version:
            self._on_pods_changed(update.source)

    def _active(self) -> list[Pod]:
        """Admitted pods that have not finished (upstream filters out terminated pods)."""
        active = []
        for uid, pod in self._pods.items():
            status = self._deps.statuses.get_pod_status(uid)
            if uid not in self._rejected and not (status and status.phase in _TERMINAL):
                active.append(pod)
        return active

    def _active_pods(self) -> int:
        return len(self._active())

    def _admission_failure(self, pod: Pod) -> tuple[str, str] | None:
        """(reason, message) when the kubelet's GeneralPredicates refuse the pod: first the
        pod count, then host ports, in upstream's order."""
        active = self._active()
        if len(active) >= self._max_pods:
            return "OutOfpods", (
                f"Node didn't have enough resource: pods, requested: 1, used: {len(active)}, "
                f"capacity: {self._max_pods}"
            )
        node = self._node_info() if self._node_info is not None else None
        if node is not None:
            failure = admission_failure(pod, node, active)
            if failure is not None:
                return failure
        clash = host_port_conflict(pod, active)
        if clash is not None:
            ip, protocol, port = clash
            log.info("pod %s: host port %s %s:%d is in use", pod.full_name, protocol, ip, port)
            return NODE_PORTS_REASON, NODE_PORTS_MESSAGE
        return None

    def _add(self, pod: Pod) -> None:
        failure = self._admission_failure(pod)
        if failure is not None:
            reason, message = failure
            log.warning("pod %s rejected: %s: %s", pod.full_name, reason, message)
            self._deps.events.event(pod, WARNING, reason, message)
            self._rejected[pod.uid] = PodStatus(
                phase="Failed",
                reason=reason,
                message=f"Pod {message}",
            )
            # through the one status writer too, so node mode reports the rejection
            self._deps.statuses.set_pod_status(pod.uid, self._rejected[pod.uid])
            self._pods[pod.uid] = pod
            self._pods_version += 1
            return
        self._pods[pod.uid] = pod
        self._pods_version += 1
        previous = next((t for t, u in self._terminating.items() if u == pod.uid), None)
        worker = PodWorker(pod, self._deps, after=previous)
        self._workers[pod.uid] = worker
        self._tasks[pod.uid] = asyncio.create_task(worker.run(), name=f"pod {pod.full_name}")
        log.info("pod %s added", pod.full_name)

    def _delete_gracefully(self, uid: str, pod: Pod) -> None:
        """The API server is deleting the pod: stop it within its deletion grace period and
        keep it, with its final status, until the source removes it (node mode's status
        writer sends that status, then deletes the pod object)."""
        worker = self._workers.get(uid)
        if worker is None:
            return
        grace = pod.meta.deletion_grace_period_s
        worker.terminate(float(grace) if grace is not None else None, keep_status=True)

    def _remove(self, uid: str) -> None:
        pod = self._pods.pop(uid, None)
        self._pods_version += 1
        if self._rejected.pop(uid, None) is not None:
            self._deps.statuses.remove(uid)
        worker = self._workers.pop(uid, None)
        task = self._tasks.pop(uid, None)
        if worker is None or task is None:
            return
        log.info("pod %s removed; stopping it", pod.full_name if pod else uid)
        # gone from its source: nobody waits for a final status any more
        grace = pod.meta.deletion_grace_period_s if pod and pod.meta.deletion_timestamp else None
        worker.terminate(float(grace) if grace is not None else None, keep_status=False)
        if task.done():
            self._deps.statuses.remove(uid)
        self._terminating[task] = uid
        task.add_done_callback(lambda t: self._terminating.pop(t, None))

    async def wait_terminated(self) -> None:
        """Wait until every removed pod has finished stopping (tests, shutdown)."""
        while self._terminating:
            await asyncio.gather(*list(self._terminating), return_exceptions=True)

    async def _stop_workers_leaving_containers(self) -> None:
        """Agent shutdown: stop syncing but leave containers running for the next agent."""
        tasks = [*self._tasks.values(), *self._terminating]
        for t in tasks:
            t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)

    # ----- the relister (PLEG) -----

    async def _relist_loop(self) -> None:
        while True:
            await self._deps.clock.sleep(self._relist_s)
            try:
                await self.relist()
            except Exception:  # supervision point: the relister must outlive runtime hiccups
                log.exception("relisting containers failed")

    async def relist(self) -> None:
        listed_at = self._deps.clock.monotonic()
        containers = await self._deps.runtime.list_containers()
        if self._deps.cache is not None:
            self._deps.cache.update(containers, listed_at)
        current = {c.id: (c.state, c.labels.get(LABEL_POD_UID, "")) for c in containers}
        woken: set[str] = set()
        for cid, seen in current.items():
            if self._seen_containers.get(cid) != seen:
                woken.add(seen[1])
        for cid in set(self._seen_containers) - set(current):
            woken.add(self._seen_containers[cid][1])
        self._seen_containers = current
        self._last_relist = self._deps.clock.monotonic()
        for uid in woken:
            self.wake(uid)

    # ----- orphans -----

    async def remove_orphans(self) -> int:
        """Once every source has reported: stop and remove sandboxes pykubelet created for pods
        that are no longer desired (their manifest went away while the agent was down)."""
        rt = self._deps.runtime
        removed = 0
        for sb in await rt.list_pod_sandboxes():
            uid = sb.labels.get(LABEL_POD_UID, "")
            if sb.labels.get(LABEL_MANAGED) != "true" or uid in self._pods:
                continue
            try:
                grace = max(float(sb.annotations.get(ANNOTATION_GRACE, "30")), MIN_GRACE_S)
            except ValueError:
                grace = 30.0
            log.info(
                "removing orphaned sandbox %s of pod %s/%s (%s)", sb.id, sb.namespace, sb.name, uid
            )
            running = [
                c for c in await rt.list_containers(sb.id) if c.state is ContainerState.RUNNING
            ]
            await asyncio.gather(*(rt.stop_container(c.id, grace) for c in running))
            await rt.stop_pod_sandbox(sb.id)
            await rt.remove_pod_sandbox(sb.id)
            removed += 1
        return removed

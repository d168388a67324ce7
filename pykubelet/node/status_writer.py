"""The pod status writer: the only code that writes pod status to the API server (§3.7).

It wakes when the ``StatusManager`` records a change (or the API pod source sees one), and
every 10 s regardless; for each API pod (and each static pod with a mirror pod) whose status
object changed it builds the v1 status and PATCHes ``pods/<name>/status`` when that differs
from what it last sent. The patch carries ``metadata.uid`` as a precondition; conditions merge
by type, container statuses are replaced. Requests go through the main client's token bucket
(``kubeAPIQPS``/``kubeAPIBurst``), at most ``CONCURRENCY`` in flight; a pod whose status
changes again while its PATCH is in flight is sent once more afterwards, so the rate is
bounded and the last status always wins.

Graceful deletion: once an API pod with ``deletionTimestamp`` has its final status sent and
its worker is done, the pod is DELETEd with ``gracePeriodSeconds: 0`` and a UID precondition,
as upstream's status manager does; the watch's DELETED event then removes it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from pykubelet.api import PodStatus
from pykubelet.core.clock import Clock
from pykubelet.node.client import SMP, ApiError, KubeApi
from pykubelet.node.pod_source import ApiPodSource, is_finished
from pykubelet.pods.manager import PodManager
from pykubelet.pods.status_manager import StatusManager
from pykubelet.pods.types import WorkerPhase

__all__ = ["PodStatusWriter"]

log = logging.getLogger(__name__)

RESYNC_S = 10.0
CONCURRENCY = 4
_TERMINAL = ("Succeeded", "Failed")
# status keys the kubelet owns; absent from a new status they are cleared with null
_OWNED = (
    "message",
    "reason",
    "hostIP",
    "podIP",
    "podIPs",
    "startTime",
    "qosClass",
    "initContainerStatuses",
    "containerStatuses",
)


class PodStatusWriter:
    def __init__(
        self,
        api: KubeApi,
        manager: PodManager,
        statuses: StatusManager,
        source: ApiPodSource,
        clock: Clock,
        *,
        mirror_of: Callable[[str], tuple[str, str, str] | None] | None = None,
        static_pods: Callable[[], list[str]] | None = None,
    ) -> None:
        self._api = api
        self._manager = manager
        self._statuses = statuses
        self._source = source
        self._clock = clock
        self._mirror_of = mirror_of or (lambda _uid: None)  # static uid -> (ns, name, mirror uid)
        self._static_pods = static_pods or list
        self._seen: dict[str, PodStatus | None] = {}  # uid -> status object last looked at
        self._sent: dict[str, dict[str, Any]] = {}  # api uid -> status dict last PATCHed
        self._deleting: set[str] = set()
        self._changes = statuses.subscribe()  # UIDs whose status changed
        self._wake = asyncio.Event()  # a deleted pod's worker finished
        self._awaiting: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.patches = 0
        self.deletes = 0

    async def run(self) -> None:
        sem = asyncio.Semaphore(CONCURRENCY)
        inflight: dict[str, asyncio.Task[None]] = {}
        while True:
            self._source.changed.clear()
            self._wake.clear()
            while not self._changes.empty():
                self._changes.get_nowait()
            for uid, target in self._due().items():
                if uid in inflight:
                    self._seen.pop(uid, None)  # look again once the PATCH in flight is done
                    continue
                task = asyncio.create_task(self._send(sem, *target))
                inflight[uid] = task
                task.add_done_callback(functools.partial(_forget_task, inflight, uid))
            waits = [
                asyncio.ensure_future(self._changes.get()),
                asyncio.ensure_future(self._source.changed.wait()),
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(self._clock.sleep(RESYNC_S)),
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            if not any(w.done() and not w.cancelled() for w in waits[:3]):
                self._seen.clear()  # the periodic resync looks at every pod again

    def _due(self) -> dict[str, tuple[str, str, str, str, PodStatus, dict[str, Any]]]:
        """uid -> (local uid, namespace, name, api uid, status, raw API pod) of every pod
        whose status object changed since it was last looked at."""
        due = {}
        for uid, raw in self._source.pods.items():
            status = self._statuses.get_pod_status(uid)  # rejections are written there too
            if status is None and is_finished(raw) and raw["metadata"].get("deletionTimestamp"):
                self._delete_finished(uid, raw)  # never run here: only the final DELETE is due
                continue
            if status is None or self._seen.get(uid) is status:
                if not (raw["metadata"].get("deletionTimestamp") and uid not in self._deleting):
                    continue
            self._seen[uid] = status
            md = raw["metadata"]
            if status is not None:
                due[uid] = (uid, md["namespace"], md["name"], uid, status, raw)
        live_api = set(self._source.pods)
        statics = set(self._static_pods())
        for uid in statics:
            mirror = self._mirror_of(uid)
            if mirror is not None:
                live_api.add(mirror[2])
            status = self._statuses.get_pod_status(uid)
            if mirror is None or status is None:
                continue
            if self._seen.get(uid) is status and mirror[2] in self._sent:
                continue
            self._seen[uid] = status
            due[uid] = (uid, mirror[0], mirror[1], mirror[2], status, {})
        for gone in [u for u in self._seen if u not in self._source.pods and u not in statics]:
            del self._seen[gone]
            self._deleting.discard(gone)
        for gone in [u for u in self._sent if u not in live_api]:
            del self._sent[gone]
        return due

    async def _send(
        self,
        sem: asyncio.Semaphore,
        uid: str,
        namespace: str,
        name: str,
        api_uid: str,
        status: PodStatus,
        raw: dict[str, Any],
    ) -> None:
        async with sem:
            try:
                await self._patch(namespace, name, api_uid, status, raw)
                if raw.get("metadata", {}).get("deletionTimestamp"):
                    await self._maybe_delete(uid, namespace, name, status)
            except ApiError as e:
                if e.status in (404, 409):
                    log.info("pod %s/%s: status not written: %s", namespace, name, e)
                else:
                    log.warning("pod %s/%s: status not written: %s", namespace, name, e)
                    self._seen.pop(uid, None)  # retried on the next resync

    async def _patch(
        self, namespace: str, name: str, api_uid: str, status: PodStatus, raw: dict[str, Any]
    ) -> None:
        body = status.to_dict()
        if body == self._sent.get(api_uid):
            return
        server = raw.get("status") or {}
        patch = dict(body)
        for key in _OWNED:
            if key not in body and key in server:
                patch[key] = None
        await self._api.request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/{name}/status",
            body={"metadata": {"uid": api_uid}, "status": patch},
            content_type=SMP,
        )
        self._sent[api_uid] = body
        self.patches += 1

    def _finished(self, uid: str, status: PodStatus) -> bool:
        """The pod's containers are stopped and its final status is known."""
        worker = self._manager.worker(uid)
        if worker is not None:
            return worker.phase is WorkerPhase.TERMINATED
        return status.phase in _TERMINAL or all(
            c.state.running is None for c in status.container_statuses
        )

    async def _maybe_delete(self, uid: str, namespace: str, name: str, status: PodStatus) -> None:
        if uid in self._deleting:
            return
        if not self._finished(uid, status):
            worker = self._manager.worker(uid)
            if worker is not None and uid not in self._awaiting:  # look again when it is done
                self._awaiting.add(uid)
                task = asyncio.create_task(self._when_done(uid, worker.done))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return
        self._deleting.add(uid)
        try:
            await self._api.request(
                "DELETE",
                f"/api/v1/namespaces/{namespace}/pods/{name}",
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": uid},
                },
            )
            self.deletes += 1
            log.info("pod %s/%s: terminated; deleted from the API server", namespace, name)
        except ApiError as e:
            self._deleting.discard(uid)
            if e.status not in (404, 409):
                raise

    def _delete_finished(self, uid: str, raw: dict[str, Any]) -> None:
        if uid in self._deleting or uid in self._awaiting:
            return
        self._awaiting.add(uid)  # one task per pod
        md = raw["metadata"]
        status = PodStatus(phase=str(raw["status"]["phase"]))
        task = asyncio.create_task(self._delete_quietly(uid, md["namespace"], md["name"], status))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _delete_quietly(self, uid: str, namespace: str, name: str, status: PodStatus) -> None:
        try:
            await self._maybe_delete(uid, namespace, name, status)
        except ApiError as e:
            log.warning("pod %s/%s: not deleted: %s", namespace, name, e)  # next resync retries
        finally:
            self._awaiting.discard(uid)

    async def _when_done(self, uid: str, done: asyncio.Event) -> None:
        await done.wait()
        self._awaiting.discard(uid)
        self._seen.pop(uid, None)
        self._wake.set()


def _forget_task(inflight: dict[str, asyncio.Task[None]], uid: str, _task: object) -> None:
    inflight.pop(uid, None)

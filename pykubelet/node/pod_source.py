"""The API pod source: list + watch the pods bound to this node (reference §3.1).

``GET /api/v1/pods?fieldSelector=spec.nodeName=<node>`` then a watch (``reflector.py``: resume,
relist on 410 Gone or a broken stream, back-off while the server is down). Every (re)list puts
a ``SET`` on the manager's queue, ADDED/MODIFIED an ``ADD``, DELETED a ``REMOVE``. Mirror pods
are not pods to run: they go to the mirror-pod manager only. The raw API objects are kept
(``pods``) for the status writer. Each pod handed over is registered with ``refs`` (the watched
ConfigMaps and Secrets) before the pod layer sees it, and unregistered when it goes, as
upstream's pod manager registers pods with its secret and configMap managers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from pykubelet.api import Pod
from pykubelet.core.clock import Clock
from pykubelet.core.errors import InvalidInput
from pykubelet.node.client import KubeApi
from pykubelet.node.reflector import Reflector
from pykubelet.pods.static_pod import CONFIG_MIRROR, CONFIG_SOURCE
from pykubelet.pods.types import PodUpdate, UpdateOp

__all__ = ["ApiPodSource", "is_finished", "is_mirror"]

log = logging.getLogger(__name__)

SOURCE = "api"


class PodRefs(Protocol):
    """Told which pods the pod layer has, so it can follow what they reference."""

    def register(self, pod: Pod) -> None: ...

    def unregister(self, uid: str) -> None: ...


class _NoRefs:
    def register(self, pod: Pod) -> None:
        pass

    def unregister(self, uid: str) -> None:
        pass


def is_mirror(raw: dict[str, Any]) -> bool:
    return CONFIG_MIRROR in ((raw.get("metadata") or {}).get("annotations") or {})


def is_finished(raw: dict[str, Any]) -> bool:
    """A pod the API server already has as Succeeded or Failed: nothing to run, ever (as the
    kubelet skips terminated pods, e.g. a Job's pod or a rejection, after a restart)."""
    return (raw.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _uid(raw: dict[str, Any]) -> str:
    return str((raw.get("metadata") or {}).get("uid", ""))


class ApiPodSource:
    def __init__(
        self,
        api: KubeApi,
        node_name: str,
        updates: asyncio.Queue[PodUpdate],
        clock: Clock,
        *,
        on_mirrors: Callable[[dict[str, dict[str, Any]]], None] | None = None,
        refs: PodRefs | None = None,
    ) -> None:
        self._api = api
        self._node = node_name
        self._updates = updates
        self._clock = clock
        self._on_mirrors = on_mirrors or (lambda _m: None)
        self.ready = asyncio.Event()  # the first list was delivered
        self.pods: dict[str, dict[str, Any]] = {}  # uid -> raw API pod (not mirrors)
        self.mirrors: dict[str, dict[str, Any]] = {}  # uid -> raw mirror pod
        self._desired: dict[str, Pod] = {}  # uid -> the pod last handed to the manager
        self.changed = asyncio.Event()  # any pod changed (status writer: deletions)
        self._refs = refs or _NoRefs()
        self._reflector = Reflector(
            api,
            "/api/v1/pods",
            {"fieldSelector": f"spec.nodeName={node_name}"},
            clock,
            on_list=self._listed,
            on_event=self._event,
            what="pod",
        )

    @property
    def relists(self) -> int:
        return self._reflector.relists

    async def run(self) -> None:
        await self._reflector.run()

    def _to_pod(self, raw: dict[str, Any]) -> Pod | None:
        """The desired pod: without ``status``, ``resourceVersion`` and ``managedFields``, so a
        status-only change (our own PATCHes) is no change for the pod layer (upstream's
        RECONCILE)."""
        md = {
            k: v
            for k, v in (raw.get("metadata") or {}).items()
            if k not in ("resourceVersion", "managedFields")
        }
        # a local annotation, as upstream adds kubernetes.io/config.source
        md["annotations"] = {CONFIG_SOURCE: SOURCE, **(md.get("annotations") or {})}
        desired = {k: v for k, v in raw.items() if k != "status"}
        desired["metadata"] = md
        try:
            return Pod.from_dict(desired)
        except InvalidInput as e:
            log.warning(
                "pod %s/%s from the API is not valid: %s", md.get("namespace"), md.get("name"), e
            )
            return None

    async def _listed(self, items: list[dict[str, Any]]) -> None:
        self.pods = {_uid(p): p for p in items if not is_mirror(p)}
        self.mirrors = {_uid(p): p for p in items if is_mirror(p)}
        runnable = [r for uid, r in self.pods.items() if uid in self._desired or not is_finished(r)]
        pods = tuple(p for p in (self._to_pod(r) for r in runnable) if p)
        gone = set(self._desired) - {p.uid for p in pods}
        self._desired = {p.uid: p for p in pods}
        for pod in pods:
            self._refs.register(pod)
        await self._updates.put(PodUpdate(op=UpdateOp.SET, source=SOURCE, pods=pods))
        for uid in gone:
            self._refs.unregister(uid)
        self._on_mirrors(self.mirrors)
        self.changed.set()
        self.ready.set()

    async def _event(self, kind: str, obj: dict[str, Any]) -> None:
        uid = _uid(obj)
        if is_mirror(obj):
            if kind == "DELETED":
                self.mirrors.pop(uid, None)
            else:
                self.mirrors[uid] = obj
            self._on_mirrors(self.mirrors)
            return
        if kind == "DELETED":
            self.pods.pop(uid, None)
            self._desired.pop(uid, None)
            pod = self._to_pod(obj)
            if pod is not None:
                await self._updates.put(PodUpdate(op=UpdateOp.REMOVE, source=SOURCE, pods=(pod,)))
            self._refs.unregister(uid)
        elif kind in ("ADDED", "MODIFIED"):
            self.pods[uid] = obj
            pod = None if uid not in self._desired and is_finished(obj) else self._to_pod(obj)
            if pod is not None and self._desired.get(uid) != pod:
                self._desired[uid] = pod
                self._refs.register(pod)
                await self._updates.put(PodUpdate(op=UpdateOp.ADD, source=SOURCE, pods=(pod,)))
        self.changed.set()

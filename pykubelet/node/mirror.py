"""Mirror pods: the API server's read-only copy of each static pod (reference §3.4).

For every static pod the manager runs, a pod of the same name and namespace is created with
annotation ``kubernetes.io/config.mirror: <config.hash>`` and a controller ownerReference to
the Node. A mirror that is being deleted, or whose hash no longer matches (the manifest
changed), is deleted (grace 0, UID precondition) and created again; a mirror whose static pod
is gone is deleted. Mirror pods arrive from the API pod source (``update``); their spec is
never run. The status writer sends a static pod's status onto its mirror (``mirror_of``).

A pass runs when the mirrors change, when the pod manager has taken a change of the static
pods (``pods_changed``: upstream updates the mirror in the pod's next sync, at once), and every
``period_s`` (``syncFrequency``, upstream's periodic pod sync); after a pass the API server
refused, or while the Node is not known yet, again within ``RETRY_S``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from typing import Any

from pykubelet.api import Pod
from pykubelet.core.clock import Clock
from pykubelet.node.client import ApiError, KubeApi
from pykubelet.node.pod_source import SOURCE as API_SOURCE
from pykubelet.pods.manager import PodManager
from pykubelet.pods.static_pod import CONFIG_HASH, CONFIG_MIRROR, CONFIG_SOURCE

__all__ = ["MirrorPods"]

log = logging.getLogger(__name__)

RECONCILE_S = 60.0  # syncFrequency's default; node mode passes the configured one
RETRY_S = 10.0  # after a refused pass, or before the Node is known: upstream's pod sync back-off
_LOCAL_ANNOTATIONS = ("kubernetes.io/config.seen", CONFIG_SOURCE)


def _key(raw: dict[str, Any]) -> tuple[str, str]:
    md = raw.get("metadata") or {}
    return str(md.get("namespace", "default")), str(md.get("name", ""))


class MirrorPods:
    def __init__(
        self,
        api: KubeApi,
        node_name: str,
        manager: PodManager,
        clock: Clock,
        *,
        node_uid: Callable[[], str],
        period_s: float = RECONCILE_S,
    ) -> None:
        self._api = api
        self._node = node_name
        self._manager = manager
        self._clock = clock
        self._node_uid = node_uid
        self._period_s = period_s
        self._mirrors: dict[tuple[str, str], dict[str, Any]] = {}  # (ns, name) -> raw mirror
        self._known = False  # the source listed mirrors at least once
        self._wake = asyncio.Event()
        self.created = 0
        self.deleted = 0

    # ----- fed by the API pod source -----

    def update(self, mirrors: dict[str, dict[str, Any]]) -> None:
        self._mirrors = {_key(m): m for m in mirrors.values()}
        self._known = True
        self._wake.set()

    # ----- fed by the pod manager -----

    def pods_changed(self, source: str) -> None:
        """The manager applied an update: a static pod added, changed or removed is followed
        now, not at the periodic pass."""
        if source != API_SOURCE:
            self._wake.set()

    def static_pods(self) -> list[Pod]:
        return [
            p
            for p in self._manager.list_pods()
            if p.meta.annotations.get(CONFIG_SOURCE) not in (None, "api")
        ]

    def static_uids(self) -> list[str]:
        return [p.uid for p in self.static_pods()]

    def mirror_of(self, static_uid: str) -> tuple[str, str, str] | None:
        """(namespace, name, mirror UID) of a static pod's current mirror."""
        pod = self._manager.get_pod_by_uid(static_uid)
        if pod is None:
            return None
        m = self._mirrors.get((pod.meta.namespace, pod.meta.name))
        if m is None or m["metadata"].get("annotations", {}).get(
            CONFIG_MIRROR
        ) != pod.meta.annotations.get(CONFIG_HASH):
            return None
        return pod.meta.namespace, pod.meta.name, str(m["metadata"]["uid"])

    # ----- reconciling -----

    async def run(self) -> None:
        while True:
            self._wake.clear()
            wait_s = RETRY_S
            if self._known and self._node_uid():
                try:
                    await self.reconcile()
                    wait_s = self._period_s
                except ApiError as e:
                    log.warning("mirror pods: %s", e)
            try:
                await asyncio.wait_for(self._wake.wait(), min(wait_s, self._period_s))
            except TimeoutError:
                pass

    def wake(self) -> None:
        self._wake.set()

    async def reconcile(self) -> None:
        wanted = {(p.meta.namespace, p.meta.name): p for p in self.static_pods()}
        for key, mirror in list(self._mirrors.items()):
            pod = wanted.get(key)
            md = mirror["metadata"]
            stale = (
                pod is None
                or md.get("deletionTimestamp")
                or (md.get("annotations") or {}).get(CONFIG_MIRROR)
                != pod.meta.annotations.get(CONFIG_HASH)
            )
            if stale:
                await self._delete(mirror)
        for key, pod in wanted.items():
            if key not in self._mirrors:
                await self._create(pod)

    def _mirror_body(self, pod: Pod) -> dict[str, Any]:
        raw: dict[str, Any] = copy.deepcopy(dict(pod.raw))
        md = raw["metadata"] = dict(raw.get("metadata") or {})
        for k in ("uid", "resourceVersion", "selfLink", "creationTimestamp"):
            md.pop(k, None)
        annotations = {
            k: v for k, v in (md.get("annotations") or {}).items() if k not in _LOCAL_ANNOTATIONS
        }
        annotations[CONFIG_MIRROR] = pod.meta.annotations.get(CONFIG_HASH, pod.uid)
        md["annotations"] = annotations
        md["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "name": self._node,
                "uid": self._node_uid(),
                "controller": True,
            }
        ]
        raw.pop("status", None)
        raw["apiVersion"], raw["kind"] = "v1", "Pod"
        return raw

    async def _create(self, pod: Pod) -> None:
        ns = pod.meta.namespace
        try:
            created = await self._api.request(
                "POST", f"/api/v1/namespaces/{ns}/pods", body=self._mirror_body(pod)
            )
        except ApiError as e:
            if e.status == 409:
                return  # the watch brings it; a stale one is deleted on the next pass
            raise
        self._mirrors[(ns, pod.meta.name)] = created
        self.created += 1
        log.info("mirror pod %s/%s created", ns, pod.meta.name)

    async def _delete(self, mirror: dict[str, Any]) -> None:
        ns, name = _key(mirror)
        try:
            await self._api.request(
                "DELETE",
                f"/api/v1/namespaces/{ns}/pods/{name}",
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": mirror["metadata"]["uid"]},
                },
            )
            self.deleted += 1
            log.info("mirror pod %s/%s deleted", ns, name)
        except ApiError as e:
            if e.status not in (404, 409):
                raise
        self._mirrors.pop((ns, name), None)

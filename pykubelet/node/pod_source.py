"""The API pod source: list + watch the pods bound to this node (reference §3.1).

``GET /api/v1/pods?fieldSelector=spec.nodeName=<node>`` then a watch from its
``resourceVersion`` with bookmarks and a server timeout of 5 to 10 minutes. A watch that ends
normally resumes from the last version; ``410 Gone`` (or an ERROR event) and a broken
connection relist. Every (re)list puts a ``SET`` on the manager's queue, ADDED/MODIFIED an
``ADD``, DELETED a ``REMOVE``. Mirror pods are not pods to run: they go to the mirror-pod
manager only. The raw API objects are kept (``pods``) for the status writer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from typing import Any

from pykubelet.api import Pod
from pykubelet.core.clock import Clock
from pykubelet.core.errors import InvalidInput
from pykubelet.node.client import ApiError, KubeApi
from pykubelet.pods.static_pod import CONFIG_MIRROR, CONFIG_SOURCE
from pykubelet.pods.types import PodUpdate, UpdateOp

__all__ = ["ApiPodSource", "is_finished", "is_mirror"]

log = logging.getLogger(__name__)

SOURCE = "api"
LIST_LIMIT = 500


def is_mirror(raw: dict[str, Any]) -> bool:
    return CONFIG_MIRROR in ((raw.get("metadata") or {}).get("annotations") or {})


def is_finished(raw: dict[str, Any]) -> bool:
    """A pod the API server already has as Succeeded or Failed: nothing to run, ever (as the
    kubelet skips terminated pods, e.g. a Job's pod or a rejection, after a restart)."""
    return (raw.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _uid(raw: dict[str, Any]) -> str:
    return str((raw.get("metadata") or {}).get("uid", ""))


class _Relist(Exception):
    """The watch cannot resume (410 Gone, ERROR event, broken stream): list again."""


class ApiPodSource:
    def __init__(
        self,
        api: KubeApi,
        node_name: str,
        updates: asyncio.Queue[PodUpdate],
        clock: Clock,
        *,
        on_mirrors: Callable[[dict[str, dict[str, Any]]], None] | None = None,
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
        self.relists = 0

    @property
    def _query(self) -> dict[str, Any]:
        return {"fieldSelector": f"spec.nodeName={self._node}"}

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                rv = await self._list()
                delay = 0.5
                while True:
                    rv = await self._watch(rv)
            except _Relist as e:
                log.info("pod watch: %s; listing again", e)
            except ApiError as e:
                log.warning("pods from the API server: %s; retrying in %.1fs", e, delay)
                await self._clock.sleep(delay)
                delay = min(delay * 2, 30.0)

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

    async def _list(self) -> str:
        items: list[dict[str, Any]] = []
        cont = ""
        query = {**self._query, "limit": LIST_LIMIT, "resourceVersion": "0"}
        while True:
            if cont:
                query = {**self._query, "limit": LIST_LIMIT, "continue": cont}
            data = await self._api.request("GET", "/api/v1/pods", query=query)
            items.extend(data.get("items") or [])
            cont = (data.get("metadata") or {}).get("continue") or ""
            if not cont:
                rv = str((data.get("metadata") or {}).get("resourceVersion", ""))
                break
        self.relists += 1
        self.pods = {_uid(p): p for p in items if not is_mirror(p)}
        self.mirrors = {_uid(p): p for p in items if is_mirror(p)}
        runnable = [r for uid, r in self.pods.items() if uid in self._desired or not is_finished(r)]
        pods = tuple(p for p in (self._to_pod(r) for r in runnable) if p)
        self._desired = {p.uid: p for p in pods}
        await self._updates.put(PodUpdate(op=UpdateOp.SET, source=SOURCE, pods=pods))
        self._on_mirrors(self.mirrors)
        self.changed.set()
        self.ready.set()
        return rv

    async def _watch(self, rv: str) -> str:
        """Follow one watch from ``rv``; returns the version to resume from when it ends."""
        timeout = random.randint(300, 600)
        query = {
            **self._query,
            "watch": True,
            "resourceVersion": rv,
            "allowWatchBookmarks": True,
            "timeoutSeconds": timeout,
        }
        try:
            resp = await self._api.stream("/api/v1/pods", query, request_timeout_s=timeout + 30)
        except ApiError as e:
            if e.status == 410:
                raise _Relist("410 Gone") from None
            raise
        try:
            while True:
                try:
                    line = await resp.content.readline()
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                    raise _Relist(f"watch stream broken ({e or type(e).__name__})") from None
                except Exception as e:
                    if type(e).__module__.startswith("aiohttp"):
                        raise _Relist(f"watch stream broken ({e or type(e).__name__})") from None
                    raise
                if not line:
                    return rv  # the server's timeout: resume from the last version
                try:
                    event = json.loads(line)
                except ValueError:
                    raise _Relist("undecodable watch event") from None
                rv = await self._event(event, rv)
        finally:
            resp.release()

    async def _event(self, event: dict[str, Any], rv: str) -> str:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            raise _Relist(f"watch error {obj.get('code')}: {obj.get('message')}")
        new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
        if kind == "BOOKMARK":
            return new_rv
        uid = _uid(obj)
        if is_mirror(obj):
            if kind == "DELETED":
                self.mirrors.pop(uid, None)
            else:
                self.mirrors[uid] = obj
            self._on_mirrors(self.mirrors)
            return new_rv
        if kind == "DELETED":
            self.pods.pop(uid, None)
            self._desired.pop(uid, None)
            pod = self._to_pod(obj)
            if pod is not None:
                await self._updates.put(PodUpdate(op=UpdateOp.REMOVE, source=SOURCE, pods=(pod,)))
        elif kind in ("ADDED", "MODIFIED"):
            self.pods[uid] = obj
            pod = None if uid not in self._desired and is_finished(obj) else self._to_pod(obj)
            if pod is not None and self._desired.get(uid) != pod:
                self._desired[uid] = pod
                await self._updates.put(PodUpdate(op=UpdateOp.ADD, source=SOURCE, pods=(pod,)))
        self.changed.set()
        return new_rv

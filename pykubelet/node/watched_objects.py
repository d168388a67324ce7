"""ConfigMaps and Secrets kept current by watching them, as upstream's watch-based manager
(``configMapAndSecretChangeDetectionStrategy: Watch``, the default).

One reflector per referenced object: a list + watch of its namespace's configmaps or secrets
with ``fieldSelector=metadata.name=<name>``, the only list/watch the Node authorizer allows a
node (for objects that pods bound to it reference). It starts when the first pod referencing the
object is registered and stops when the last one is unregistered. Reads are served from what
the reflector holds (waiting for its first list); an object that does not exist reads as None.
An object marked ``immutable`` keeps its last copy and is no longer watched, as upstream.
A change (created, updated, deleted, or different after a relist) calls ``on_change`` with the
UIDs of the pods that reference it, so their volumes are rewritten at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from pykubelet.api import Pod
from pykubelet.core.clock import Clock
from pykubelet.node.client import ApiError, KubeApi
from pykubelet.node.reflector import Reflector
from pykubelet.podspec.api_objects import CONFIG_MAP, references

__all__ = ["WatchedObjects"]

log = logging.getLogger(__name__)

SYNC_WAIT_S = 10.0  # a read waits this long for the object's first list, then fails
RESTART_S = 5.0  # a watch that failed unexpectedly starts again after this

Key = tuple[str, str, str]  # (kind, namespace, name)


def _plural(kind: str) -> str:
    return "configmaps" if kind == CONFIG_MAP else "secrets"


class _Immutable(Exception):
    """The object is marked ``immutable``: its copy can no longer change, the watch ends."""


class _Watch:
    """One object's reflector and the last copy it delivered (None: it does not exist)."""

    def __init__(self, api: KubeApi, key: Key, clock: Clock, changed: Callable[[], None]) -> None:
        kind, namespace, name = key
        self.obj: dict[str, Any] | None = None
        self.synced = asyncio.Event()
        self._changed = changed
        self._clock = clock
        self.reflector = Reflector(
            api,
            f"/api/v1/namespaces/{namespace}/{_plural(kind)}",
            {"fieldSelector": f"metadata.name={name}"},
            clock,
            on_list=self._listed,
            on_event=self._event,
            what=f"{_plural(kind)[:-1]} {namespace}/{name}",
        )
        self.task: asyncio.Task[None] | None = None

    def _set(self, obj: dict[str, Any] | None) -> None:
        before = _content(self.obj)
        self.obj = obj
        if self.synced.is_set() and _content(obj) != before:
            self._changed()
        self.synced.set()
        if obj is not None and obj.get("immutable") is True:
            raise _Immutable

    async def follow(self) -> None:
        """The reflector until the object turns immutable (as upstream's manager stops it)."""
        while True:
            try:
                await self.reflector.run()
            except _Immutable:
                log.info("stopped watching %s: immutable", self.reflector.what)
                return
            except Exception:  # supervision point: a stale copy is worse than a retry
                log.exception("watch of %s failed; starting it again", self.reflector.what)
                await self._clock.sleep(RESTART_S)

    async def _listed(self, items: list[dict[str, Any]]) -> None:
        self._set(items[0] if items else None)

    async def _event(self, kind: str, obj: dict[str, Any]) -> None:
        self._set(None if kind == "DELETED" else obj)


def _content(obj: dict[str, Any] | None) -> Any:
    """What a pod sees of the object: a new resourceVersion with the same data is no change."""
    if obj is None:
        return None
    return (obj.get("data"), obj.get("binaryData"), obj.get("stringData"))


class WatchedObjects:
    """Register pods (``register``/``unregister``, from the pod source); ``get`` an object a
    registered pod references (anything else is the caller's to GET). Watches are tasks on
    the running loop; ``run`` stops them all when node mode ends."""

    def __init__(
        self, api: KubeApi, clock: Clock, *, on_change: Callable[[Iterable[str]], None]
    ) -> None:
        self._api = api
        self._clock = clock
        self._on_change = on_change
        self._pods: dict[str, set[Key]] = {}  # pod uid -> the objects it references
        self._users: dict[Key, set[str]] = {}  # object -> uids of the pods referencing it
        self._watches: dict[Key, _Watch] = {}

    @property
    def watched(self) -> list[Key]:
        """The objects being watched now (sorted; for tests and ``doctor``)."""
        return sorted(self._watches)

    def register(self, pod: Pod) -> None:
        ns = pod.meta.namespace
        keys = {(kind, ns, name) for kind, name in references(pod)}
        old = self._pods.get(pod.uid, set())
        self._pods[pod.uid] = keys
        for key in keys - old:
            self._users.setdefault(key, set()).add(pod.uid)
            if key not in self._watches:
                self._start(key)
        for key in old - keys:
            self._drop(key, pod.uid)

    def unregister(self, uid: str) -> None:
        for key in self._pods.pop(uid, set()):
            self._drop(key, uid)

    def watches(self, kind: str, namespace: str, name: str) -> bool:
        return (kind, namespace, name) in self._watches

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The watched object as last seen (``watches`` must be true), None when it does not
        exist; waits for the first list, as upstream's manager waits for its reflector."""
        watch = self._watches[(kind, namespace, name)]
        try:
            await asyncio.wait_for(watch.synced.wait(), SYNC_WAIT_S)
        except TimeoutError:
            raise ApiError(
                0, f"failed to sync {_plural(kind)[:-1]} {namespace}/{name} cache: timed out"
            ) from None
        return watch.obj

    def _start(self, key: Key) -> None:
        watch = _Watch(self._api, key, self._clock, lambda: self._changed(key))
        watch.task = asyncio.get_running_loop().create_task(
            watch.follow(), name=f"watch {watch.reflector.what}"
        )
        self._watches[key] = watch
        log.info("watching %s", watch.reflector.what)

    def _drop(self, key: Key, uid: str) -> None:
        users = self._users.get(key)
        if users is None:
            return
        users.discard(uid)
        if users:
            return
        del self._users[key]
        watch = self._watches.pop(key, None)
        if watch is not None and watch.task is not None:
            watch.task.cancel()
            log.info("stopped watching %s", watch.reflector.what)

    def _changed(self, key: Key) -> None:
        users = sorted(self._users.get(key, ()))
        if users:
            self._on_change(users)

    async def run(self) -> None:
        """Holds the watches; cancelling it (node mode ending) stops every one."""
        try:
            await asyncio.Event().wait()
        finally:
            tasks = [w.task for w in self._watches.values() if w.task is not None]
            self._watches.clear()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

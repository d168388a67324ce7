"""client-go's reflector, the one list + watch loop of node mode (the pod source and the
watched ConfigMaps and Secrets use it).

A paginated ``GET`` (first from the watch cache, ``resourceVersion=0``), then a watch from its
``resourceVersion`` with bookmarks and a random server timeout of 5 to 10 minutes. A watch that
ends normally resumes from the last version; ``410 Gone``, an ERROR event or a broken stream
lists again; an API error (the server down) is retried with back-off, 0.5 s doubling to 30 s.
What the objects mean is the caller's: ``on_list`` gets every (re)list's items, ``on_event``
each ADDED, MODIFIED or DELETED event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from pykubelet.core.clock import Clock
from pykubelet.node.client import ApiError, KubeApi

__all__ = ["Reflector"]

log = logging.getLogger(__name__)

LIST_LIMIT = 500


class _Relist(Exception):
    """The watch cannot resume (410 Gone, ERROR event, broken stream): list again."""


class Reflector:
    def __init__(
        self,
        api: KubeApi,
        path: str,
        query: dict[str, Any],
        clock: Clock,
        *,
        on_list: Callable[[list[dict[str, Any]]], Awaitable[None]],
        on_event: Callable[[str, dict[str, Any]], Awaitable[None]],
        what: str,
    ) -> None:
        self._api = api
        self._path = path
        self._query = query
        self._clock = clock
        self._on_list = on_list
        self._on_event = on_event
        self.what = what  # for the log: "pod", "configmap ns/name"
        self.relists = 0

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                rv = await self._list()
                delay = 0.5
                while True:
                    rv = await self._watch(rv)
            except _Relist as e:
                log.info("%s watch: %s; listing again", self.what, e)
            except ApiError as e:
                log.warning("%s from the API server: %s; retrying in %.1fs", self.what, e, delay)
                await self._clock.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _list(self) -> str:
        items: list[dict[str, Any]] = []
        query = {**self._query, "limit": LIST_LIMIT, "resourceVersion": "0"}
        while True:
            data = await self._api.request("GET", self._path, query=query)
            items.extend(data.get("items") or [])
            cont = (data.get("metadata") or {}).get("continue") or ""
            if not cont:
                rv = str((data.get("metadata") or {}).get("resourceVersion", ""))
                break
            query = {**self._query, "limit": LIST_LIMIT, "continue": cont}
        self.relists += 1
        await self._on_list(items)
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
            resp = await self._api.stream(self._path, query, request_timeout_s=timeout + 30)
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
        kind = str(event.get("type"))
        obj = event.get("object") or {}
        if kind == "ERROR":
            raise _Relist(f"watch error {obj.get('code')}: {obj.get('message')}")
        new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            await self._on_event(kind, obj)
        return new_rv

"""Node registration and the node status loop (reference §1.3, §1.5).

Registration retries forever (100 ms doubling to 7 s); a 409 adopts the existing Node as
upstream does. Then every ``nodeStatusUpdateFrequency`` the status is computed on a fresh GET
(``resourceVersion=0`` first, etcd on retries, at most 5 attempts) and PATCHed only when it
changed or ``nodeStatusReportFrequency`` has passed since the last report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pykubelet.core.clock import Clock
from pykubelet.node.client import SMP, ApiError, KubeApi
from pykubelet.node.machine import MachineFacts
from pykubelet.node.node_status import (
    ImageRecord,
    NodeSettings,
    adopt_patch,
    build_node,
    build_status,
    node_images,
    status_differs,
)

__all__ = ["NodeController"]

log = logging.getLogger(__name__)

NODE_STATUS_RETRIES = 5


class NodeController:
    def __init__(
        self,
        api: KubeApi,
        settings: NodeSettings,
        facts: MachineFacts,
        clock: Clock,
        *,
        update_s: float,
        report_s: float,
        ready_errors: Callable[[], Sequence[str]],
        settings_ready: Callable[[], Awaitable[NodeSettings]] | None = None,
        node_event: Callable[[str, str, str], None] | None = None,
        register: bool = True,
        images: Callable[[], Awaitable[Sequence[ImageRecord]]] | None = None,
        max_images: int = 50,
    ) -> None:
        self._api = api
        self.settings = settings
        self._facts = facts
        self._clock = clock
        self._update_s = update_s
        self._report_s = report_s
        self._ready_errors = ready_errors
        self._settings_ready = settings_ready
        self._register = register  # registerNode false: wait for the Node an admin creates
        self._node_event = node_event or (lambda _t, _r, _m: None)
        self._list_images = images
        self._max_images = max_images
        self._images: list[dict[str, Any]] = []  # the last image list read from the runtime
        self.node: dict[str, Any] | None = None  # the latest Node read from or written to the API
        self.registered = asyncio.Event()
        self._last_sent: dict[str, Any] | None = None
        self._last_report = 0.0
        self._ready: bool | None = None
        self.patches = 0  # status PATCHes sent (tests and the benchmark)

    @property
    def path(self) -> str:
        return f"/api/v1/nodes/{self.settings.name}"

    @property
    def uid(self) -> str:
        return str(((self.node or {}).get("metadata") or {}).get("uid", ""))

    async def run(self) -> None:
        if self._settings_ready is not None:
            self.settings = await self._settings_ready()  # the port the servers got
        await self.register()
        self._node_event("Normal", "Starting", "Starting kubelet.")
        while True:
            try:
                await self.sync_once()
            except Exception:  # supervision point: the heartbeat must outlive any one failure
                log.exception("node status update failed")
            await self._clock.sleep(self._update_s)

    async def _status(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        await self._read_images()
        return build_status(
            self.settings,
            self._facts,
            previous=previous,
            ready_errors=list(self._ready_errors()),
            now=self._clock.now(),
            images=self._images,
        )

    async def _read_images(self) -> None:
        """The runtime's images for ``status.images``; on a failure the last list is kept (one
        failed read is no reason to tell the scheduler the node has no images)."""
        if self._list_images is None or self._max_images == 0:
            return
        try:
            self._images = node_images(await self._list_images(), self._max_images)
        except Exception as e:  # the runtime's failure, whatever it is, must not stop the status
            log.warning("node status: error getting image list: %s", e)

    async def register(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._register_once()
                self.registered.set()
                log.info("node %s registered with the API server", self.settings.name)
                return
            except ApiError as e:
                log.warning("unable to register node %s: %s", self.settings.name, e)
            await self._clock.sleep(delay)
            delay = min(delay * 2, 7.0)

    async def _register_once(self) -> None:
        s = self.settings
        if not self._register:
            self.node = await self._api.request("GET", self.path)
            return
        node = build_node(s, self._facts, await self._status(None))
        try:
            self.node = await self._api.request("POST", "/api/v1/nodes", body=node)
            return
        except ApiError as e:
            if e.status != 409:
                raise
        existing = await self._api.request("GET", self.path)
        log.info("node %s already exists: adopting it", s.name)
        patch = adopt_patch(existing, s, self._facts)
        self.node = existing
        if patch:
            self.node = await self._api.request(
                "PATCH", f"{self.path}/status", body=patch, content_type=SMP
            )

    async def sync_once(self) -> None:
        for attempt in range(NODE_STATUS_RETRIES):
            try:
                query = {"resourceVersion": "0"} if attempt == 0 else None
                server = await self._api.request("GET", self.path, query=query)
                await self._patch_if_needed(server)
                return
            except ApiError as e:
                log.warning("node status update attempt %d failed: %s", attempt + 1, e)
        log.error(
            "node status update failed %d times; next try in %.0fs",
            NODE_STATUS_RETRIES,
            self._update_s,
        )

    async def _patch_if_needed(self, server: dict[str, Any]) -> None:
        self.node = server
        old = server.get("status") or {}
        wanted = await self._status(old)
        due = self._clock.monotonic() - self._last_report >= self._report_s
        if not due and not status_differs(old, wanted, self._last_sent):
            return
        body: dict[str, Any] = {"status": dict(wanted)}
        if old.get("addresses") != wanted["addresses"]:
            # addresses is wrongly merge-by-type in the schema: replace it wholesale
            body["status"]["addresses"] = [*wanted["addresses"], {"$patch": "replace"}]
        else:
            del body["status"]["addresses"]
        if old.get("images") and not wanted.get("images"):
            body["status"]["images"] = None  # the merge patch's way to remove them
        self.node = await self._api.request(
            "PATCH", f"{self.path}/status", body=body, content_type=SMP
        )
        self.patches += 1
        self._last_sent = wanted
        self._last_report = self._clock.monotonic()
        self._note_ready(wanted)

    def _note_ready(self, status: Mapping[str, Any]) -> None:
        ready = any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
        )
        if ready != self._ready:
            self._ready = ready
            reason = "NodeReady" if ready else "NodeNotReady"
            self._node_event("Normal", reason, f"Node {self.settings.name} status is now: {reason}")

"""Node mode assembled: which part talks through which client, and the loops to run.

Three clients on one connection pool, as upstream (reference §0.1): heartbeats (node status,
Lease) unlimited, events behind ``eventRecordQPS``/``eventBurst``, everything else behind
``kubeAPIQPS``/``kubeAPIBurst``. The API pod source starts at once (pods can be admitted only
against a Node, so admission waits for registration via ``admission_node``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pykubelet.api import Pod
from pykubelet.core.clock import Clock
from pykubelet.node.client import KubeApi, RateLimiter, connect
from pykubelet.node.config_source import ApiConfigSource
from pykubelet.node.events import ApiEventSink
from pykubelet.node.lease import LeaseController
from pykubelet.node.machine import read_machine_facts
from pykubelet.node.mirror import MirrorPods
from pykubelet.node.node_status import ImageRecord, NodeSettings
from pykubelet.node.pod_source import ApiPodSource
from pykubelet.node.pull_secrets import ApiPullSecrets
from pykubelet.node.registration import NodeController
from pykubelet.node.status_writer import PodStatusWriter
from pykubelet.node.volume_refresh import VolumeRefresher
from pykubelet.node.watched_objects import WatchedObjects
from pykubelet.pods.admission import AdmissionNode
from pykubelet.pods.manager import PodManager
from pykubelet.pods.status_manager import StatusManager
from pykubelet.pods.types import PodUpdate

__all__ = ["NodeMode", "NodeModeSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeModeSettings:
    kubeconfig: str
    node: NodeSettings
    root_dir: str
    update_s: float
    report_s: float
    lease_duration_s: int
    api_qps: float
    api_burst: int
    event_qps: float
    event_burst: int
    register: bool = True
    sync_frequency_s: float = 60.0
    # configMapAndSecretChangeDetectionStrategy: "Watch" (watched copies) or "Get" (a GET per read)
    change_detection: str = "Watch"
    max_images: int = 50  # nodeStatusMaxImages: -1 no cap, 0 none


class NodeMode:
    """The node-mode parts around one pod layer. Build with ``NodeMode.create`` (loads the
    kubeconfig); ``services()`` are the loops the agent runs."""

    def __init__(
        self,
        api: KubeApi,
        settings: NodeModeSettings,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.api = api
        self._clock = clock
        self.heartbeat_api = api.view(None)
        self.main_api = api.view(RateLimiter(settings.api_qps, settings.api_burst, clock))
        self.events = ApiEventSink(
            api.view(RateLimiter(settings.event_qps, settings.event_burst, clock)),
            settings.node.name,
            clock,
        )
        self.pull_secrets = ApiPullSecrets(self.main_api)
        # one connection per watched object (HTTP/1.1; upstream multiplexes them over HTTP/2):
        # a pool of their own, so hundreds of them never starve the main client's pool
        watching = settings.change_detection == "Watch"
        self.watch_api = self.main_api.own_pool() if watching else None
        self.watched = (
            WatchedObjects(self.watch_api, clock, on_change=self._objects_changed)
            if self.watch_api is not None
            else None
        )
        self.config_source = ApiConfigSource(self.main_api, self.watched)
        self.node: NodeController | None = None
        self.lease: LeaseController | None = None
        self.source: ApiPodSource | None = None
        self.writer: PodStatusWriter | None = None
        self.mirrors: MirrorPods | None = None
        self.refresher: VolumeRefresher | None = None

    @classmethod
    async def create(cls, settings: NodeModeSettings, clock: Clock) -> NodeMode:
        api = await connect(settings.kubeconfig, limiter=None)
        return cls(api, settings, clock)

    def _objects_changed(self, uids: Iterable[str]) -> None:
        if self.refresher is not None:
            self.refresher.kick(uids)

    def pods_changed(self, source: str) -> None:
        """The pod manager's ``on_pods_changed``: mirror pods follow static pod changes."""
        if self.mirrors is not None:
            self.mirrors.pods_changed(source)

    def admission_node(self) -> AdmissionNode | None:
        node = self.node.node if self.node is not None else None
        return AdmissionNode.from_node(node) if node else None

    def attach(
        self,
        *,
        manager: PodManager,
        statuses: StatusManager,
        updates: asyncio.Queue[PodUpdate],
        ready_errors: Callable[[], Sequence[str]],
        port: Callable[[], Awaitable[int]],
        refresh_volumes: Callable[[Pod], Awaitable[bool]] | None = None,
        images: Callable[[], Awaitable[Sequence[ImageRecord]]] | None = None,
    ) -> None:
        """Wire the parts to the pod layer (no I/O)."""
        s = self.settings

        async def settings_ready() -> NodeSettings:
            return replace(s.node, port=await port())

        self.node = NodeController(
            self.heartbeat_api,
            s.node,
            read_machine_facts(s.root_dir),
            self._clock,
            update_s=s.update_s,
            report_s=s.report_s,
            ready_errors=ready_errors,
            settings_ready=settings_ready,
            node_event=self.events.node_event,
            register=s.register,
            images=images,
            max_images=s.max_images,
        )
        node = self.node
        self.lease = LeaseController(
            self.heartbeat_api,
            s.node.name,
            self._clock,
            duration_s=s.lease_duration_s,
            node_uid=lambda: node.uid,
        )
        self.mirrors = MirrorPods(
            self.main_api,
            s.node.name,
            manager,
            self._clock,
            node_uid=lambda: node.uid,
            period_s=s.sync_frequency_s,
        )
        self.source = ApiPodSource(
            self.main_api,
            s.node.name,
            updates,
            self._clock,
            on_mirrors=self.mirrors.update,
            refs=self.watched,
        )
        source = self.source
        self.refresher = (
            VolumeRefresher(
                lambda: [p for uid in list(source.pods) if (p := manager.get_pod_by_uid(uid))],
                refresh_volumes,
                self._clock,
                period_s=s.sync_frequency_s,
            )
            if refresh_volumes is not None
            else None
        )
        self.writer = PodStatusWriter(
            self.main_api,
            manager,
            statuses,
            self.source,
            self._clock,
            mirror_of=self.mirrors.mirror_of,
            static_pods=self.mirrors.static_uids,
        )

    def services(self) -> list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]]:
        assert self.node and self.lease and self.source and self.writer and self.mirrors
        return [
            ("node-status", self.node.run),
            ("node-lease", self._lease_after_registration),
            ("api-pods", self._source_after_registration),
            ("pod-status-writer", self.writer.run),
            ("mirror-pods", self.mirrors.run),
            ("events", self.events.run),
            *([("volume-refresh", self.refresher.run)] if self.refresher is not None else []),
            *([("watched-objects", self.watched.run)] if self.watched is not None else []),
            ("api-client", self._close_on_exit),
        ]

    async def _lease_after_registration(self) -> None:
        assert self.node is not None and self.lease is not None
        await self.node.registered.wait()
        await self.lease.run()

    async def _source_after_registration(self) -> None:
        """Pods are admitted against the Node, so the watch starts once it is registered
        (later upstream releases also wait for the node informer's first sync)."""
        assert self.node is not None and self.source is not None
        await self.node.registered.wait()
        await self.source.run()

    async def _close_on_exit(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(self.api.counts.items()))
            log.info("API requests made: %s", counts or "none")
            if self.watch_api is not None:
                await self.watch_api.close()
            await self.api.close()

"""``/containerLogs/{ns}/{pod}/{ctr}`` (reference §1.3, §4.2, §4.3, §8.1, §8.5)."""

from __future__ import annotations

from aiohttp import web

from pykubelet.clock import Clock
from pykubelet.pods.protocol import PodLister
from pykubelet.runtime.protocol import Runtime

__all__ = ["ContainerLogsHandler"]


class ContainerLogsHandler:
    def __init__(self, pods: PodLister, runtime: Runtime, *, clock: Clock) -> None:
        self._pods = pods
        self._runtime = runtime
        self._clock = clock

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPNotImplemented()

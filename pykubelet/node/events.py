"""Events to the API server (reference §4): core/v1 Events POSTed by the kubelet.

``event()`` never blocks and never fails: events go on a bounded queue (dropped when full, as
client-go's broadcaster drops) and one task sends them through the events client's own token
bucket (``eventRecordQPS``/``eventBurst``), so an event storm never delays status. An event
identical to one sent in the last 10 minutes (same object, type, reason, message) PATCHes that
event's ``count`` and ``lastTimestamp`` instead of creating another, as client-go correlates.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from pykubelet.api import Pod
from pykubelet.core.clock import Clock
from pykubelet.node.client import MERGE, ApiError, KubeApi
from pykubelet.node.node_status import time_text

__all__ = ["ApiEventSink"]

log = logging.getLogger(__name__)

QUEUE_MAX = 1000
DEDUP_WINDOW_S = 600.0


@dataclass(frozen=True, slots=True)
class _Pending:
    involved: tuple[tuple[str, str], ...]  # involvedObject as sorted items (hashable)
    namespace: str
    type: str
    reason: str
    message: str
    at: float


class ApiEventSink:
    def __init__(self, api: KubeApi, node_name: str, clock: Clock) -> None:
        self._api = api
        self._node = node_name
        self._clock = clock
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(QUEUE_MAX)
        self._sent: dict[tuple[Any, ...], tuple[str, int, float]] = {}  # key -> (name, count, at)
        self.dropped = 0
        self.sent = 0

    # ----- the EventSink side (called by the pod layer) -----

    def event(
        self, pod: Pod, type_: str, reason: str, message: str, *, field_path: str = ""
    ) -> None:
        involved = {
            "kind": "Pod",
            "namespace": pod.meta.namespace,
            "name": pod.meta.name,
            "uid": pod.uid,
            "apiVersion": "v1",
        }
        if field_path:
            involved["fieldPath"] = field_path
        self._put(involved, pod.meta.namespace, type_, reason, message)

    def node_event(self, type_: str, reason: str, message: str) -> None:
        # upstream: the node's UID in events is literally its name; namespace default
        involved = {"kind": "Node", "name": self._node, "uid": self._node, "apiVersion": "v1"}
        self._put(involved, "default", type_, reason, message)

    def _put(
        self, involved: dict[str, str], namespace: str, type_: str, reason: str, message: str
    ) -> None:
        item = _Pending(
            tuple(sorted(involved.items())), namespace, type_, reason, message, self._clock.now()
        )
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    # ----- sending -----

    async def run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._send(item)
            except ApiError as e:
                log.info("event %s %s not recorded: %s", item.reason, dict(item.involved), e)
            except Exception:  # supervision point: events are best effort
                log.exception("sending an event failed")

    async def _send(self, e: _Pending) -> None:
        key = (e.involved, e.type, e.reason, e.message)
        now = e.at
        for k in [k for k, v in self._sent.items() if now - v[2] > DEDUP_WINDOW_S]:
            del self._sent[k]
        stamp = time_text(now)
        previous = self._sent.get(key)
        if previous is not None:
            name, count, _at = previous
            try:
                await self._api.request(
                    "PATCH",
                    f"/api/v1/namespaces/{e.namespace}/events/{name}",
                    body={"count": count + 1, "lastTimestamp": stamp, "message": e.message},
                    content_type=MERGE,
                )
                self._sent[key] = (name, count + 1, now)
                self.sent += 1
                return
            except ApiError as err:
                if err.status != 404:
                    raise
        involved = dict(e.involved)
        name = f"{involved['name']}.{int(now * 1e9):x}"
        await self._api.request(
            "POST",
            f"/api/v1/namespaces/{e.namespace}/events",
            body={
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": e.namespace},
                "involvedObject": involved,
                "reason": e.reason,
                "message": e.message,
                "source": {"component": "kubelet", "host": self._node},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
                "type": e.type,
                "reportingComponent": "",
                "reportingInstance": "",
            },
        )
        self._sent[key] = (name, 1, now)
        self.sent += 1

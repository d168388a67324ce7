"""``/pods`` and ``/runningpods/``: v1 PodList bodies, byte-compatible with upstream (§7.4).

The encoded /pods body is cached per pod-list snapshot, so a request is usually just a write:
the lister hands out immutable snapshots, and a new snapshot (new tuple/list object or any
changed pod) is re-encoded once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aiohttp import web

from pykubelet.api import Pod, pods_to_list
from pykubelet.pods.protocol import PodLister
from pykubelet.runtime.protocol import Runtime
from pykubelet.runtime.types import ContainerStatus

__all__ = ["PodsHandlers", "encode_pod_list", "not_acceptable"]

JSON = "application/json"


def encode_pod_list(pods: Sequence[Pod]) -> bytes:
    """Compact JSON in upstream key order, ``items: null`` when empty, trailing newline."""
    return (
        json.dumps(pods_to_list(pods), separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    )


def not_acceptable(request: web.Request, produces: str | None) -> bool:
    """go-restful's 406: an Accept header with neither ``*/*`` nor the produced type (a route
    that declares no type accepts only ``*/*``)."""
    accept = request.headers.get("Accept", "")
    if not accept:
        return False
    types = [part.split(";", 1)[0].strip() for part in accept.split(",")]
    return not any(t in ("*/*", produces) for t in types)


class PodsHandlers:
    def __init__(self, pods: PodLister, runtime: Runtime) -> None:
        self._pods = pods
        self._runtime = runtime
        # The last snapshot (the sequence object and its pods) and its encoding.
        self._cache_seq: Sequence[Pod] | None = None
        self._cache_key: tuple[Pod, ...] | None = None
        self._cache_body = b""

    def _body(self) -> bytes:
        listed = self._pods.list_pods()
        if listed is self._cache_seq:
            return self._cache_body
        snapshot = tuple(listed)
        key = self._cache_key
        if (
            key is not None
            and len(key) == len(snapshot)
            and all(a is b for a, b in zip(key, snapshot, strict=True))
        ):
            self._cache_seq = listed
            return self._cache_body
        body = encode_pod_list(snapshot)
        self._cache_key, self._cache_seq, self._cache_body = snapshot, listed, body
        return body

    async def pods(self, request: web.Request) -> web.StreamResponse:
        if not_acceptable(request, JSON):
            raise web.HTTPNotAcceptable()
        return web.Response(body=self._body(), headers={"Content-Type": JSON})

    async def running_pods(self, request: web.Request) -> web.StreamResponse:
        if not_acceptable(request, JSON):
            raise web.HTTPNotAcceptable()
        sandboxes = await self._runtime.list_pod_sandboxes()
        containers = await self._runtime.list_containers()
        by_sandbox: dict[str, list[ContainerStatus]] = {}
        for c in containers:
            by_sandbox.setdefault(c.sandbox_id, []).append(c)
        items: list[dict[str, object]] = []
        for sb in sandboxes:
            ctrs = by_sandbox.get(sb.id, [])
            if not ctrs:
                continue
            items.append(
                {
                    "metadata": {
                        "name": sb.name,
                        "namespace": sb.namespace,
                        "uid": sb.uid,
                        "creationTimestamp": None,
                    },
                    "spec": {
                        "containers": [
                            {"name": c.name, "image": c.image, "resources": {}} for c in ctrs
                        ]
                    },
                    "status": {},
                }
            )
        doc: dict[str, object] = {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {},
            "items": items or None,
        }
        body = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        return web.Response(body=body, headers={"Content-Type": JSON})

"""``/pods`` and ``/runningpods/``: v1 PodList bodies, byte-compatible with upstream (§7.4).

Each pod's JSON is cached while the pod is unchanged (same stored object, equal status), and the
whole body while no fragment changed; a ``VersionedPodLister`` is not even listed while its
``generation()`` stays the same, so a request is just a write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from pykubelet.api import Pod, go_json, pods_to_list
from pykubelet.pods.protocol import PodLister
from pykubelet.runtime.protocol import Runtime
from pykubelet.runtime.types import ContainerStatus

__all__ = ["PodListEncoder", "PodsHandlers", "encode_pod_list", "not_acceptable"]

JSON = "application/json"


def encode_pod_list(pods: Sequence[Pod]) -> bytes:
    """Go-compatible JSON in upstream key order, ``items: null`` when empty, trailing newline."""
    return go_json(pods_to_list(pods)) + b"\n"


def not_acceptable(request: web.Request, produces: str | None) -> bool:
    """go-restful's 406: an Accept header with neither ``*/*`` nor the produced type (a route
    that declares no type accepts only ``*/*``)."""
    accept = request.headers.get("Accept", "")
    if not accept:
        return False
    types = [part.split(";", 1)[0].strip() for part in accept.split(",")]
    return not any(t in ("*/*", produces) for t in types)


@dataclass(slots=True)
class _Fragment:
    pod: Pod
    body: bytes


def _same_pod(a: Pod, b: Pod) -> bool:
    """Would ``a`` and ``b`` encode the same? Views built from one stored pod share ``raw``,
    ``meta`` and ``spec`` objects; a status is compared by identity, then by value."""
    return (
        a.raw is b.raw
        and a.meta is b.meta
        and a.spec is b.spec
        and (a.status is b.status or a.status == b.status)
    )


class PodListEncoder:
    """Encodes PodLists, reusing each pod's JSON while it is unchanged (listers may hand out
    fresh view objects per call, so identity of the list alone is not enough)."""

    def __init__(self) -> None:
        self._fragments: dict[tuple[str, str, str], _Fragment] = {}
        self._last_seq: Sequence[Pod] | None = None
        self._last_parts: list[bytes] = []
        self._last_body = b""

    def encode(self, listed: Sequence[Pod]) -> bytes:
        if listed is self._last_seq:
            return self._last_body
        parts: list[bytes] = []
        fragments: dict[tuple[str, str, str], _Fragment] = {}
        for pod in listed:
            key = (pod.meta.namespace, pod.meta.name, pod.meta.uid)
            frag = self._fragments.get(key)
            if frag is None or not _same_pod(frag.pod, pod):
                frag = _Fragment(pod=pod, body=_dumps(pod.to_dict()))
            fragments[key] = frag
            parts.append(frag.body)
        self._fragments = fragments
        self._last_seq = listed
        if parts != self._last_parts or not self._last_body:
            self._last_parts = parts
            items = b"[" + b",".join(parts) + b"]" if parts else b"null"
            self._last_body = _PREFIX + items + b"}\n"
        return self._last_body


_PREFIX = b'{"kind":"PodList","apiVersion":"v1","metadata":{},"items":'


_dumps = go_json


class PodsHandlers:
    def __init__(self, pods: PodLister, runtime: Runtime) -> None:
        self._pods = pods
        self._runtime = runtime
        self._encoder = PodListEncoder()
        self._generation: int | None = None
        self._body_at_generation = b""

    def _body(self) -> bytes:
        generation = getattr(self._pods, "generation", None)
        if generation is None:
            return self._encoder.encode(self._pods.list_pods())
        # read before listing: a change during the listing only makes the next request re-list
        g = generation()
        if g != self._generation:
            self._body_at_generation = self._encoder.encode(self._pods.list_pods())
            self._generation = g
        return self._body_at_generation

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

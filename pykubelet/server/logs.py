"""``/containerLogs/{ns}/{pod}/{ctr}`` (reference §1.3, §4.2, §4.3, §8.1, §8.5).

Parse and validate the query, find the pod and container, pick the container id from the pod
status, ask the runtime for its log path, then commit 200 (no Content-Type) and stream.
"""

from __future__ import annotations

from aiohttp import web

from pykubelet.core.clock import Clock
from pykubelet.core.errors import PykubeletError
from pykubelet.logs import (
    LogQueryInvalid,
    LogQueryUndecodable,
    LogUnavailable,
    TailHub,
    parse_log_query,
    select_container_id,
    stream_log,
)
from pykubelet.pods.protocol import PodLister
from pykubelet.runtime.protocol import Runtime
from pykubelet.runtime.types import ContainerState
from pykubelet.server.bare import BareStreamResponse
from pykubelet.server.errors import HttpError
from pykubelet.server.pods import not_acceptable

__all__ = ["ContainerLogsHandler"]


class ContainerLogsHandler:
    def __init__(
        self, pods: PodLister, runtime: Runtime, *, clock: Clock, hub: TailHub | None = None
    ) -> None:
        self._pods = pods
        self._runtime = runtime
        self._clock = clock
        self.hub = hub or TailHub(clock=clock)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not_acceptable(request, None):
            raise web.HTTPNotAcceptable()
        ns = request.match_info["namespace"]
        pod_name = request.match_info["pod"]
        ctr = request.match_info["container"]
        query = {k: request.query.getall(k) for k in request.query}
        try:
            opts = parse_log_query(query)
        except LogQueryUndecodable:
            raise HttpError(400, '{"message": "Unable to decode query."}') from None
        except LogQueryInvalid:
            raise HttpError(422, '{"message": "Invalid request."}') from None
        pod = self._pods.get_pod(ns, pod_name)
        if pod is None:
            raise HttpError(404, f'pod "{pod_name}" does not exist')
        raw_spec = pod.raw.get("spec") or {}
        ephemeral = [c.get("name") for c in raw_spec.get("ephemeralContainers") or []]
        if pod.spec.container(ctr) is None and ctr not in ephemeral:
            raise HttpError(404, f'container "{ctr}" not found in pod "{pod_name}"')
        try:
            full_id = select_container_id(pod, ctr, previous=opts.previous)
        except LogUnavailable as e:
            raise HttpError(400, e.reason, content_type=None) from None
        cid = full_id.split("://", 1)[-1]
        try:
            status = await self._runtime.container_status(cid)
        except PykubeletError:
            raise HttpError(
                400, f"unable to retrieve container logs for {full_id}", content_type=None
            ) from None

        async def alive() -> bool:
            try:
                st = await self._runtime.container_status(cid)
            except PykubeletError:
                return False
            return st.state is ContainerState.RUNNING

        follow = (
            opts.follow
            and status.state is ContainerState.RUNNING
            and not opts.previous
            and bool(status.log_path)
        )
        resp = BareStreamResponse(status=200)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if not status.log_path:  # nothing to read: an empty 200, as upstream after its commit
            await resp.write_eof()
            return resp
        try:
            await stream_log(
                status.log_path,
                opts,
                resp.write,
                now_s=self._clock.now(),
                hub=self.hub if follow else None,
                alive=alive if follow else None,
            )
            await resp.write_eof()
        except ConnectionResetError:  # the client went away mid-stream; nothing to answer
            pass
        return resp

"""Responses that carry no Content-Type header at all, as upstream's /containerLogs sends
(reference §8.1). aiohttp adds ``application/octet-stream`` to any non-empty body; these
classes remove it just before the headers are written."""

from __future__ import annotations

from aiohttp import hdrs, web

__all__ = ["BareResponse", "BareStreamResponse"]


class BareStreamResponse(web.StreamResponse):
    async def _write_headers(self) -> None:
        self.headers.popall(hdrs.CONTENT_TYPE, None)
        await super()._write_headers()


class BareResponse(web.Response):
    async def _write_headers(self) -> None:
        self.headers.popall(hdrs.CONTENT_TYPE, None)
        await super()._write_headers()

"""``/logs/``: a file server over the system log directory (upstream: Go's http.FileServer over
/var/log). Directories list as Go does (``<pre>`` + one link per entry); files are served with
Range support. Unlike upstream, symlinks that lead outside the directory are not followed.
"""

from __future__ import annotations

import asyncio
import html
import os
from urllib.parse import quote

from aiohttp import web

from pykubelet.server.errors import mux_not_found

__all__ = ["system_log_routes"]


class SystemLogs:
    def __init__(self, directory: str) -> None:
        self._root = os.path.realpath(directory)

    def _resolve(self, rel: str) -> str | None:
        path = os.path.realpath(os.path.join(self._root, rel.lstrip("/")))
        if path != self._root and not path.startswith(self._root + os.sep):
            return None
        return path

    def _lookup(self, rel: str) -> tuple[str, str]:
        """("missing" | "dir" | "file", resolved path)."""
        path = self._resolve(rel)
        if path is None or not os.path.exists(path):
            return "missing", ""
        return ("dir" if os.path.isdir(path) else "file"), path

    async def handle(self, request: web.Request) -> web.StreamResponse:
        rel = request.match_info.get("tail", "")
        kind, path = await asyncio.to_thread(self._lookup, rel)
        if kind == "missing":
            return mux_not_found()
        if kind == "dir":
            if rel and not rel.endswith("/"):
                name = rel.rstrip("/").rsplit("/", 1)[-1]
                raise web.HTTPMovedPermanently(location=quote(name) + "/")
            return self._listing(path)
        return web.FileResponse(path)

    def _listing(self, path: str) -> web.Response:
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            return web.Response(status=500, text="Error reading directory\n")
        lines = ["<pre>"]
        for e in entries:
            name = e.name + ("/" if e.is_dir() else "")
            lines.append(f'<a href="{quote(name)}">{html.escape(name)}</a>')
        lines.append("</pre>")
        return web.Response(
            body=("\n".join(lines) + "\n").encode(),
            headers={"Content-Type": "text/html; charset=utf-8"},
        )


def system_log_routes(directory: str) -> list[web.AbstractRouteDef]:
    h = SystemLogs(directory)
    return [web.get("/logs/{tail:.*}", h.handle)]

"""``/healthz`` and its checks (reference §1.2, §8.6): exact bodies, ``verbose``, ``exclude``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from pykubelet.pods.protocol import PodLister
from pykubelet.server.leanpath import LeanAnswer
from pykubelet.server.settings import HealthCheck

__all__ = ["HealthHandlers", "PingCheck", "SyncLoopCheck"]

TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class PingCheck:
    name: str = "ping"

    def check(self) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class LogCheck:
    """Upstream fails when klog's flush stalls; our logging never blocks a flush loop."""

    name: str = "log"

    def check(self) -> str | None:
        return None


class SyncLoopCheck:
    name = "syncloop"

    def __init__(self, pods: PodLister) -> None:
        self._pods = pods

    def check(self) -> str | None:
        return None if self._pods.sync_loop_healthy() else "sync Loop took longer than expected"


def _text(status: int, body: str) -> web.Response:
    return web.Response(status=status, body=body.encode(), headers={"Content-Type": TEXT})


_OK_HEADERS = {"Content-Type": TEXT, "X-Content-Type-Options": "nosniff"}
_OK = LeanAnswer(200, tuple(_OK_HEADERS.items()), b"ok")


class HealthHandlers:
    def __init__(self, checks: Sequence[HealthCheck]) -> None:
        self.checks = tuple(checks)

    def quick(self) -> LeanAnswer | None:
        """The lean path's answer to ``/healthz`` without a query: "ok" when every check
        passes; None leaves the request to ``healthz`` (it names the failing checks)."""
        for c in self.checks:
            if c.check() is not None:
                return None
        return _OK

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        if not request.query_string and all(c.check() is None for c in self.checks):
            # the probe's usual answer: no query to parse, no lines to build
            return web.Response(body=b"ok", headers=_OK_HEADERS)
        q = request.query
        excluded = set(q.getall("exclude", []))
        verbose = "verbose" in q
        lines: list[str] = []
        failed = False
        names = {c.name for c in self.checks}
        for c in self.checks:
            if c.name in excluded:
                lines.append(f"[+]{c.name} excluded: ok")
                continue
            err = c.check()
            if err is None:
                lines.append(f"[+]{c.name} ok")
            else:
                failed = True
                lines.append(f"[-]{c.name} failed: reason withheld")
        unknown = sorted(excluded - names)
        if unknown:
            lines.append(
                "warn: some health checks cannot be excluded: no matches for "
                + ",".join(f'"{u}"' for u in unknown)
            )
        if failed:
            resp = _text(500, "\n".join(lines) + "\nhealthz check failed\n")
            resp.headers["X-Content-Type-Options"] = "nosniff"
            return resp
        resp = _text(200, "\n".join(lines) + "\nhealthz check passed\n" if verbose else "ok")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    def single(self, check: HealthCheck) -> web.RouteDef:
        async def handle(request: web.Request) -> web.StreamResponse:
            err = check.check()
            if err is None:
                return _text(200, "ok")
            resp = _text(500, f"internal server error: {err}\n")
            resp.headers["X-Content-Type-Options"] = "nosniff"
            return resp

        return web.route("*", f"/healthz/{check.name}", handle)

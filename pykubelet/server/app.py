"""The composition root of the HTTP layer: one aiohttp application per port."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from pykubelet.auth.alwaysallow import AlwaysAllowAuthorizer
from pykubelet.auth.chain import build_authenticator
from pykubelet.logs import TailHub
from pykubelet.server.debug import debug_routes
from pykubelet.server.health import HealthHandlers, LogCheck, PingCheck, SyncLoopCheck
from pykubelet.server.listener import LEAN_PATH, LeanPath
from pykubelet.server.logs import ContainerLogsHandler
from pykubelet.server.middleware import AuthGate, FrontDoor
from pykubelet.server.openapi import openapi_routes
from pykubelet.server.paths import (
    DEBUG_DISABLED_PREFIXES,
    PathTable,
    full_port_table,
    healthz_port_table,
    read_only_port_table,
)
from pykubelet.server.pods import PodsHandlers
from pykubelet.server.requestlog import JsonRequestLog
from pykubelet.server.settings import (
    HealthCheck,
    RequestObserver,
    ServerBackends,
    ServerSettings,
)
from pykubelet.server.syslogs import system_log_routes

__all__ = ["LOG_HUB", "build_full_app", "build_healthz_app", "build_read_only_app"]

# The full app's shared log follower hub (one watcher per followed file), for tests and stats.
LOG_HUB = web.AppKey("pykubelet.log_hub", TailHub)

DEBUG_DISABLED = "Debug endpoints are disabled."
LOGS_DISABLED = "logs endpoint is disabled."


def _route_paths(routes: Sequence[web.AbstractRouteDef]) -> list[str]:
    return [r.path for r in routes if isinstance(r, web.RouteDef)]


def _observer(backends: ServerBackends) -> RequestObserver:
    return backends.observer if backends.observer is not None else JsonRequestLog()


def _checks(backends: ServerBackends) -> list[HealthCheck]:
    return [PingCheck(), LogCheck(), SyncLoopCheck(backends.pods), *backends.health_checks]


def _health_routes(health: HealthHandlers) -> list[web.RouteDef]:
    routes = [web.route("*", "/healthz", health.healthz)]
    routes.extend(health.single(c) for c in health.checks)
    return routes


def _new_app(front: FrontDoor, health: HealthHandlers) -> web.Application:
    """The port's application; its listener answers plain ``GET /healthz`` on the lean path
    (``listener.LeanPath``) when this port serves it."""
    app = web.Application(middlewares=[front.handle], client_max_size=1 << 20)
    app.on_response_prepare.append(_go_headers)
    answers = {"/healthz": health.quick}
    targets = front.lean_targets(answers)
    app[LEAN_PATH] = LeanPath(front, {t: answers[t] for t in targets})
    return app


async def _go_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers as Go's server writes them: no ``Server`` header (aiohttp adds one naming itself
    and its version), and a 101 says ``Connection: Upgrade`` (aiohttp's WebSocket handshake
    writes ``upgrade``; the value is case-insensitive, but clients compare bytes)."""
    response.headers.popall("Server", None)
    if response.status == 101 and response.headers.get("Connection", "").lower() == "upgrade":
        response.headers["Connection"] = "Upgrade"


def build_full_app(settings: ServerSettings, backends: ServerBackends) -> web.Application:
    """10250: everything, behind authentication and authorization."""
    authn = (
        backends.authenticator
        if backends.authenticator is not None
        else build_authenticator(
            client_ca_file=settings.client_ca_file, anonymous_enabled=settings.anonymous_enabled
        )
    )
    authz = backends.authorizer if backends.authorizer is not None else AlwaysAllowAuthorizer()
    debugging = settings.enable_debugging_handlers
    pods = PodsHandlers(backends.pods, backends.runtime)
    hub = TailHub(clock=backends.clock)
    health = HealthHandlers(_checks(backends))
    routes: list[web.AbstractRouteDef] = [
        *_health_routes(health),
        web.get("/pods", pods.pods, allow_head=False),
        web.get("/pods/", pods.pods, allow_head=False),
        *openapi_routes(),
        *backends.extra_routes,
    ]
    disabled: dict[str, str] = {}
    if debugging:
        routes += [
            web.get("/runningpods/", pods.running_pods, allow_head=False),
            web.route("*", "/configz", _configz_handler(settings)),
            *_debug_routes(settings, backends, hub),
            *backends.extra_debug_routes,
        ]
        if not settings.enable_system_log_handler:
            disabled["/logs"] = LOGS_DISABLED
    else:
        disabled = {p: DEBUG_DISABLED for p in DEBUG_DISABLED_PREFIXES}
    table = full_port_table(debugging=debugging).with_routes(_route_paths(routes))
    gate = AuthGate(
        authn,
        authz,
        node_name=settings.node_name,
        fine_grained=settings.fine_grained_authz,
        limiter=backends.auth_limiter,
        clock=backends.clock,
    )
    front = FrontDoor(
        port_kind="full",
        table=table,
        gate=gate,
        observer=_observer(backends),
        clock=backends.clock,
        disabled=disabled,
    )
    app = _new_app(front, health)
    app[LOG_HUB] = hub

    async def close_hub(_: web.Application) -> None:
        hub.close()

    app.on_cleanup.append(close_hub)
    app.add_routes(routes)
    return app


def build_read_only_app(settings: ServerSettings, backends: ServerBackends) -> web.Application:
    """10255: the read-only set, no auth; debug paths answer 405."""
    pods = PodsHandlers(backends.pods, backends.runtime)
    health = HealthHandlers(_checks(backends))
    routes: list[web.AbstractRouteDef] = [
        *_health_routes(health),
        web.get("/pods", pods.pods, allow_head=False),
        web.get("/pods/", pods.pods, allow_head=False),
        *backends.extra_read_only_routes,
    ]
    table: PathTable = read_only_port_table().with_routes(_route_paths(routes))
    front = FrontDoor(
        port_kind="read-only",
        table=table,
        gate=None,
        observer=_observer(backends),
        clock=backends.clock,
        disabled={p: DEBUG_DISABLED for p in DEBUG_DISABLED_PREFIXES},
    )
    app = _new_app(front, health)
    app.add_routes(routes)
    return app


def build_healthz_app(settings: ServerSettings, backends: ServerBackends) -> web.Application:
    """10248: ``/healthz`` (ping only) and ``/healthz/ping``, plain HTTP, no auth."""
    front = FrontDoor(
        port_kind="healthz",
        table=healthz_port_table(),
        gate=None,
        observer=_observer(backends),
        clock=backends.clock,
    )
    health = HealthHandlers([PingCheck()])
    app = _new_app(front, health)
    app.add_routes(_health_routes(health))
    return app


def _configz_handler(
    settings: ServerSettings,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    body = json.dumps({"kubeletconfig": settings.configz}, separators=(",", ":")).encode()

    async def configz(request: web.Request) -> web.StreamResponse:
        # upstream's /configz handler sets nosniff on its JSON (a mux handler, not restful)
        return web.Response(
            body=body,
            headers={"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"},
        )

    return configz


def _debug_routes(
    settings: ServerSettings, backends: ServerBackends, hub: TailHub
) -> list[web.AbstractRouteDef]:
    """containerLogs, /debug/flags/v and the /logs/ file server."""
    logs = ContainerLogsHandler(backends.pods, backends.runtime, clock=backends.clock, hub=hub)
    routes: list[web.AbstractRouteDef] = [
        web.get("/containerLogs/{namespace}/{pod}/{container}", logs.handle, allow_head=False),
        *debug_routes(),
    ]
    if settings.enable_system_log_handler:
        routes += system_log_routes(settings.system_log_dir)
    return routes

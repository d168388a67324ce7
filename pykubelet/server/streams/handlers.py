"""HTTP handlers for /exec, /attach, /run and /portForward on the full port.

Order of checks follows the upstream kubelet: options (400), pod (404), container or sandbox
(500), upgrade (500), then the handshake of the chosen transport (400/403).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from functools import partial

from aiohttp import web

from pykubelet.api import Pod
from pykubelet.core.errors import InvalidInput, NotFound, PykubeletError
from pykubelet.runtime.types import ContainerState, SandboxState, StreamIO
from pykubelet.server.audit import COMMAND_ANNOTATION
from pykubelet.server.middleware import ANNOTATIONS_KEY
from pykubelet.server.streams.backend import StreamBackend
from pykubelet.server.streams.exec_service import CommandSession, serve_exec_spdy, serve_exec_ws
from pykubelet.server.streams.portforward_service import (
    serve_portforward_spdy,
    serve_portforward_tunnel,
    serve_portforward_ws,
)
from pykubelet.server.streams.ws_adapter import SPDY_TUNNEL_PROTOCOL
from pykubelet.streaming import (
    EXEC_WS_PROTOCOLS,
    PORTFORWARD_SPDY_PROTOCOL,
    PORTFORWARD_WS_PROTOCOLS,
    SPDY_REMOTECOMMAND_VERSIONS,
    HandshakeRefused,
    RemoteCommandOptions,
    SpdyVersion,
    negotiate_spdy_protocol,
    negotiate_ws_protocol,
    parse_ws_ports,
)

__all__ = ["stream_routes"]


def _text(status: int, body: str, headers: Sequence[tuple[str, str]] = ()) -> web.Response:
    resp = web.Response(status=status, body=body.encode("utf-8"))
    resp.headers["Content-Type"] = "text/plain; charset=utf-8"
    for name, value in headers:
        resp.headers.add(name, value)
    return resp


def _http_error(status: int, body: str) -> web.Response:
    """Go's ``http.Error``: a trailing newline and ``nosniff``."""
    return _text(status, body + "\n", (("X-Content-Type-Options", "nosniff"),))


def _refused(r: HandshakeRefused) -> web.Response:
    return _text(r.status, r.body, (*r.headers, ("X-Content-Type-Options", "nosniff")))


async def _form(request: web.Request) -> Mapping[str, Sequence[str]]:
    """Go's ``FormValue`` sources: the query, then an urlencoded POST body (query first)."""
    q = request.query
    values: dict[str, list[str]] = {k: list(q.getall(k)) for k in q}
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        body = await request.post()
        for k in body:
            values.setdefault(k, []).extend(str(v) for v in body.getall(k))
    return values


def _annotate_command(request: web.Request, command: Sequence[str]) -> None:
    """Audit exactly the argv that runs (one parse: the handler's), not a re-parse of the URL."""
    notes = request.get(ANNOTATIONS_KEY)
    if notes is not None:
        notes[COMMAND_ANNOTATION] = json.dumps(list(command))


def _tokens(request: web.Request, name: str) -> list[str]:
    return [t.strip().lower() for v in request.headers.getall(name, []) for t in v.split(",")]


def _is_upgrade(request: web.Request) -> bool:
    return "upgrade" in _tokens(request, "Connection")


def _is_websocket(request: web.Request) -> bool:
    return _is_upgrade(request) and request.headers.get("Upgrade", "").lower() == "websocket"


def _ws_offered(request: web.Request) -> list[str]:
    return [
        t.strip()
        for v in request.headers.getall("Sec-WebSocket-Protocol", [])
        for t in v.split(",")
    ]


def _forbidden_ws() -> web.Response:
    resp = web.Response(status=403, body=b"")
    resp.force_close()
    return resp


def _missing_upgrade(request: web.Request) -> web.Response | None:
    if "spdy/3.1" in request.headers.get("Upgrade", "").lower():
        return None
    headers = {k: request.headers.getall(k) for k in request.headers}
    return _http_error(400, f"unable to upgrade: missing upgrade headers in request: {headers!r}")


def _not_acceptable(request: web.Request) -> web.Response | None:
    """go-restful: a route without Produces refuses an Accept header that lacks ``*/*``."""
    accept = request.headers.get("Accept")
    if accept and "*/*" not in accept:
        return _text(406, "406: Not Acceptable")
    return None


def _pod(backend: StreamBackend, request: web.Request) -> Pod | web.Response:
    m = request.match_info
    pod = backend.pods.get_pod(m["namespace"], m["pod"])
    if pod is None:
        return _text(404, "pod does not exist")
    uid = m.get("uid")
    if uid is not None and uid != pod.uid:
        return _text(404, "pod not found")  # deliberate: checked on every path (docs)
    return pod


def _container_id(pod: Pod, name: str) -> str | None:
    status = pod.status.find_container(name) if pod.status is not None else None
    if status is None or not status.container_id:
        return None
    return status.container_id.split("://", 1)[-1]


async def _running(backend: StreamBackend, container_id: str) -> bool:
    """Upstream looks the container up among the runtime's running containers first."""
    try:
        status = await backend.runtime.container_status(container_id)
    except NotFound:
        return False
    return status.state is ContainerState.RUNNING


def _audit_id(backend: StreamBackend, request: web.Request) -> str:
    value = backend.audit_id_of(request) if backend.audit_id_of is not None else None
    value = value or request.headers.get("Audit-ID")
    return str(value) if value else str(uuid.uuid4())


def _only_get_and_post(request: web.Request) -> None:
    """go-restful registers these for GET and POST only (aiohttp lets HEAD reach a GET route)."""
    if request.method not in ("GET", "POST"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])


async def _remote_command(
    backend: StreamBackend, attach: bool, request: web.Request
) -> web.StreamResponse:
    _only_get_and_post(request)
    if (refused := _not_acceptable(request)) is not None:
        return refused
    form = await _form(request)
    try:
        opts = RemoteCommandOptions.from_query(form)
    except InvalidInput as e:
        return _text(400, e.reason)
    if not attach:
        _annotate_command(request, opts.command)
    found = _pod(backend, request)
    if isinstance(found, web.Response):
        return found
    pod, name = found, request.match_info["container"]
    cid = _container_id(pod, name)
    if cid is not None and not await _running(backend, cid):
        cid = None
    if cid is None:
        if attach:
            return _text(
                500, f"container {name} not found in pod {pod.meta.name}_{pod.meta.namespace}"
            )
        return _text(500, f'container not found ("{name}")')
    if attach:
        spec = pod.spec.container(name)
        tty = spec.tty if spec is not None else False
        opts = RemoteCommandOptions(
            stdin=opts.stdin,
            stdout=opts.stdout,
            stderr=form.get("error", [""])[0] == "1" and not tty,
            tty=tty,
            command=(),
        )
    if not _is_upgrade(request):
        return _http_error(500, "Upgrade request required")

    async def run(io: StreamIO) -> int | None:
        if attach:
            await backend.streaming.attach(cid, io)
            return None
        return await backend.streaming.exec(cid, opts.command, io)

    session = CommandSession(
        opts=opts, run=run, attach=attach, audit_id=_audit_id(backend, request), backend=backend
    )
    if _is_websocket(request):
        protocol = negotiate_ws_protocol(_ws_offered(request), EXEC_WS_PROTOCOLS)
        if protocol is None:
            return _forbidden_ws()
        return await serve_exec_ws(request, protocol, session)
    chosen = negotiate_spdy_protocol(
        request.headers.getall("X-Stream-Protocol-Version", []), SPDY_REMOTECOMMAND_VERSIONS
    )
    if isinstance(chosen, HandshakeRefused):
        return _refused(chosen)
    if (missing := _missing_upgrade(request)) is not None:
        return missing
    return await serve_exec_spdy(request, SpdyVersion(chosen), session)


async def _port_forward(backend: StreamBackend, request: web.Request) -> web.StreamResponse:
    _only_get_and_post(request)
    if (refused := _not_acceptable(request)) is not None:
        return refused
    ports: tuple[int, ...] = ()
    tunnel = _is_websocket(request) and SPDY_TUNNEL_PROTOCOL in _ws_offered(request)
    if _is_websocket(request) and not tunnel:
        try:
            ports = parse_ws_ports(request.query.getall("port", []))
        except InvalidInput as e:
            return _text(400, e.reason)
    found = _pod(backend, request)
    if isinstance(found, web.Response):
        return found
    pod = found
    sandboxes = [
        s
        for s in await backend.runtime.list_pod_sandboxes()
        if s.uid == pod.uid and s.state is SandboxState.READY
    ]
    if not sandboxes:
        return _text(500, f'pod not found ("{pod.meta.name}_{pod.meta.namespace}")')
    sandbox = max(sandboxes, key=lambda s: s.created_at)
    target = (sandbox.id, pod.uid)
    if not _is_upgrade(request):
        return _http_error(500, "Upgrade request required")
    if _is_websocket(request):
        if tunnel:
            return await serve_portforward_tunnel(request, backend, target)
        protocol = negotiate_ws_protocol(_ws_offered(request), PORTFORWARD_WS_PROTOCOLS)
        if protocol is None:
            return _forbidden_ws()
        return await serve_portforward_ws(request, backend, target, protocol, ports)
    offered = request.headers.getall("X-Stream-Protocol-Version", [])
    if not offered:
        return _http_error(500, "invalid upgrade response: status code 200")
    chosen = negotiate_spdy_protocol(offered, (PORTFORWARD_SPDY_PROTOCOL,))
    if isinstance(chosen, HandshakeRefused):
        return _refused(chosen)
    if (missing := _missing_upgrade(request)) is not None:
        return missing
    return await serve_portforward_spdy(request, backend, target)


async def _run(backend: StreamBackend, request: web.Request) -> web.StreamResponse:
    if (refused := _not_acceptable(request)) is not None:
        return refused
    found = _pod(backend, request)
    if isinstance(found, web.Response):
        return found
    name = request.match_info["container"]
    cid = _container_id(found, name)
    if cid is None:
        return _text(500, f'container not found ("{name}")')
    # go-restful's QueryParameter is FormValue: the query, then an urlencoded POST body
    cmd = ((await _form(request)).get("cmd") or [""])[0].split(" ")
    _annotate_command(request, cmd)
    try:
        result = await backend.runtime.exec_sync(cid, cmd)
    except PykubeletError as e:
        return _text(500, str(e))
    if result.exit_code != 0:
        stderr = result.stderr.decode("utf-8", "replace")
        return _text(500, f"command '{' '.join(cmd)}' exited with {result.exit_code}: {stderr}")
    data = result.stdout + result.stderr
    resp = web.Response(status=200, body=data)
    if data:
        resp.headers["Content-Type"] = "application/json"
    return resp


def stream_routes(backend: StreamBackend) -> list[web.RouteDef]:
    """The streaming routes for the full port (auth runs before them)."""
    execute = partial(_remote_command, backend, False)
    attach = partial(_remote_command, backend, True)
    forward = partial(_port_forward, backend)
    run = partial(_run, backend)
    routes: list[web.RouteDef] = []
    for method in ("GET", "POST"):
        for path, handler in (
            ("/exec/{namespace}/{pod}/{container}", execute),
            ("/exec/{namespace}/{pod}/{uid}/{container}", execute),
            ("/attach/{namespace}/{pod}/{container}", attach),
            ("/attach/{namespace}/{pod}/{uid}/{container}", attach),
            ("/portForward/{namespace}/{pod}", forward),
            ("/portForward/{namespace}/{pod}/{uid}", forward),
        ):
            routes.append(web.route(method, path, handler))
    routes.append(web.post("/run/{namespace}/{pod}/{container}", run))
    routes.append(web.post("/run/{namespace}/{pod}/{uid}/{container}", run))
    return routes

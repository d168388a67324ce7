"""The front door of every port: path cleaning, ownership, auth, then routing (design: auth
before routing). One aiohttp middleware per app; glue over ``auth/`` and ``paths``."""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from pykubelet.auth.attributes import RequestAttributes, attributes_for
from pykubelet.auth.ratelimit import AuthFailureLimiter
from pykubelet.auth.types import (
    Attributes,
    Authenticator,
    Authorizer,
    Decision,
    RequestInfo,
    UserInfo,
)
from pykubelet.core.clock import Clock, SystemClock
from pykubelet.server.audit import STAGE_COMPLETE, STAGE_STARTED, new_audit_id
from pykubelet.server.errors import error_response, go_error, mux_not_found, plain, restful_error
from pykubelet.server.leanpath import LeanAnswer, LeanHead
from pykubelet.server.paths import (
    PathClass,
    PathTable,
    clean_path,
    decode_path,
    escape_path,
    is_valid_utf8,
)
from pykubelet.server.settings import PortKind, RequestObserver, RequestRecord

__all__ = [
    "ANNOTATIONS_KEY",
    "AUDIT_ID_KEY",
    "USER_KEY",
    "AuthGate",
    "FrontDoor",
    "peer_waited",
    "stream_started",
]

log = logging.getLogger(__name__)

# Keys on the aiohttp request: the authenticated user, and a dict handlers may add audit
# annotations to (e.g. the command of an exec).
USER_KEY = web.RequestKey("pykubelet.user", UserInfo)
ANNOTATIONS_KEY = web.RequestKey("pykubelet.annotations", dict[str, str])
# The request's audit ID: its audit log event and its session recording file name.
AUDIT_ID_KEY = web.RequestKey("pykubelet.audit_id", str)
# Emits the request's ResponseStarted audit event (called when a 101 is prepared).
_STARTED_KEY: web.RequestKey[Callable[[], None]] = web.RequestKey("pykubelet.stream_started")
# Adds to the request's time spent waiting on its client (see peer_waited).
_PEER_WAIT_KEY: web.RequestKey[Callable[[float], None]] = web.RequestKey("pykubelet.peer_wait")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True, kw_only=True)
class _Outcome:
    user: UserInfo | None = None
    attrs: RequestAttributes | None = None
    decision: str = "none"
    reason: str = ""
    response: web.StreamResponse | None = None
    consumed: tuple[str, ...] = ()
    rewritten: tuple[tuple[str, str], ...] = ()
    auth_s: float = 0.0
    annotations: dict[str, str] = field(default_factory=dict)
    audit_id: str = ""
    granted: str = ""  # the subresource whose check allowed the request
    peer_wait_s: float = 0.0  # an upgraded stream's waits on its client (see peer_waited)

    def add_peer_wait(self, seconds: float) -> None:
        self.peer_wait_s += seconds


def _request_info(request: web.Request, path: str) -> RequestInfo:
    headers: dict[str, str] = {}
    for k, v in request.headers.items():
        lk = k.lower()
        headers[lk] = headers[lk] + ", " + v if lk in headers else v
    der: bytes | None = None
    ssl_obj = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_obj is not None:
        der = ssl_obj.getpeercert(binary_form=True)
    return RequestInfo(
        method=request.method,
        path=path,
        headers=headers,
        remote_addr=request.remote or "",
        peer_cert_der=der,
    )


class AuthGate:
    """Authenticate, compute attributes, authorize (reference §2.1)."""

    def __init__(
        self,
        authenticator: Authenticator,
        authorizer: Authorizer,
        *,
        node_name: str,
        fine_grained: bool,
        limiter: AuthFailureLimiter | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._authn = authenticator
        self._authz = authorizer
        self._node = node_name
        self._fine = fine_grained
        self._limiter = limiter
        self._clock = clock or SystemClock()

    @staticmethod
    def _throttled(attrs: RequestAttributes, limiter: AuthFailureLimiter, wait: float) -> _Outcome:
        limiter.refuse()
        resp = plain(429, "Too Many Requests")
        resp.headers["Retry-After"] = limiter.retry_after_header(wait)
        return _Outcome(
            attrs=attrs,
            decision="throttled",
            reason="too many failed authentications from this address",
            response=resp,
        )

    async def check(self, info: RequestInfo) -> _Outcome:
        path = info.path
        attrs = attributes_for(info.method, path, fine_grained=self._fine)
        # Only a certificate that verifies exempts from the limiter: while an address is
        # limited, a request carrying a certificate is still authenticated (nothing to guess
        # in a certificate), and served only if that succeeds; anything else gets the 429.
        limiter = self._limiter
        limited = 0.0
        if limiter is not None:
            now = self._clock.monotonic()
            limited = limiter.retry_after(info.remote_addr, now, count=False)
            if limited > 0 and info.peer_cert_der is None:
                return self._throttled(attrs, limiter, limited)
        res = await self._authn.authenticate(info)
        failed = res is None or bool(res.error) or res.user is None
        if limiter is not None and failed:
            if limited > 0:
                return self._throttled(attrs, limiter, limited)
            if res is not None and res.error:
                limiter.record_failure(info.remote_addr, self._clock.monotonic())
        if res is None or res.error or res.user is None:
            return _Outcome(
                attrs=attrs,
                decision="unauthenticated",
                reason=res.error if res is not None else "",
                response=plain(401, "Unauthorized"),
            )
        user = res.user

        def detail() -> str:  # for refusals only: not built for every allowed request
            return (
                f"user={user.name}, verb={attrs.verb}, resource=nodes, "
                f"subresource={attrs.subresource}"
            )

        reasons: list[str] = []
        for sub in attrs.subresources:
            a = Attributes(user=user, verb=attrs.verb, name=self._node, subresource=sub, path=path)
            try:
                result = await self._authz.authorize(a)
            except Exception as e:  # supervision point: an authorizer failure is a 500, never allow
                log.warning("authorizer failed for %s: %s", detail(), e)
                return _Outcome(
                    user=user,
                    attrs=attrs,
                    decision="error",
                    reason=str(e),
                    response=plain(500, f"Authorization error ({detail()})"),
                )
            if result.decision is Decision.ALLOW:
                return _Outcome(
                    user=user,
                    attrs=attrs,
                    decision="allow",
                    reason=result.reason,
                    granted=sub,
                    consumed=res.consumed_headers,
                    rewritten=res.rewritten_headers,
                )
            if result.reason:
                reasons.append(result.reason)
        return _Outcome(
            user=user,
            attrs=attrs,
            decision="forbid",
            reason="; ".join(reasons),
            response=plain(403, f"Forbidden ({detail()})"),
        )


class FrontDoor:
    """The middleware: clean → own → (auth) → disabled? → route, then observe once."""

    def __init__(
        self,
        *,
        port_kind: PortKind,
        table: PathTable,
        gate: AuthGate | None,
        observer: RequestObserver,
        clock: Clock,
        disabled: dict[str, str] | None = None,
    ) -> None:
        self._kind = port_kind
        self._table = table
        self._gate = gate
        self._observer = observer
        self._clock = clock
        # prefix → 405 message (debug handlers disabled, system log handler disabled)
        self._disabled = dict(disabled or {})
        # records not yet handed to the observer (see _observe)
        self._unobserved: list[RequestRecord] = []

    def _disabled_message(self, path: str) -> str | None:
        for prefix, msg in self._disabled.items():
            if path == prefix or path.startswith(prefix + "/"):
                return msg
        return None

    def lean_targets(self, candidates: Iterable[str]) -> frozenset[str]:
        """Of ``candidates``, the paths the lean path may answer on this port: routed here and
        not disabled (the checks ``_serve`` makes before a handler; plain paths need no
        cleaning or redirect)."""
        return frozenset(
            p
            for p in candidates
            if _is_plain(p)
            and self._table.classify(p) is PathClass.OWNED
            and self._disabled_message(p) is None
        )

    async def serve_lean(
        self, head: LeanHead, answer: LeanAnswer, remote: str, peer_cert_der: bytes | None
    ) -> LeanAnswer:
        """A request the listener recognised (``leanpath``): the same authentication,
        authorization, audit and metrics as ``handle``; ``answer`` is the handler's, computed
        by the listener, and is replaced by the refusal when the gate refuses."""
        t0 = self._clock.monotonic()
        received = self._clock.now()
        seen = _Seen(head.method, remote, head.headers.get("user-agent", ""), head.target)
        outcome = _Outcome(audit_id=new_audit_id())
        status = 500
        try:
            if self._gate is not None:
                info = RequestInfo(
                    method=head.method,
                    path=head.target,
                    headers=head.headers,
                    remote_addr=remote,
                    peer_cert_der=peer_cert_der,
                )
                refusal = (await self._checked(info, outcome)).response
                if refusal is not None:
                    answer = _lean_answer(refusal)
            else:
                outcome.attrs = attributes_for(head.method, head.target)
            status = answer.status
            return answer
        except asyncio.CancelledError:
            status = 499
            raise
        finally:
            self._observe(seen, head.target, "", outcome, status, received, t0)

    async def _checked(self, info: RequestInfo, outcome: _Outcome) -> _Outcome:
        """The gate's verdict on ``info``, recorded on ``outcome`` for the audit event."""
        assert self._gate is not None
        t = self._clock.monotonic()
        got = await self._gate.check(info)
        outcome.user, outcome.attrs = got.user, got.attrs
        outcome.decision, outcome.reason = got.decision, got.reason
        outcome.granted = got.granted
        outcome.auth_s = self._clock.monotonic() - t
        return got

    @web.middleware
    async def handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        t0 = self._clock.monotonic()
        received = self._clock.now()
        raw_path, _, query = request.raw_path.partition("?")
        if _is_plain(raw_path):  # the usual request: nothing to decode or clean
            decoded = path = raw_path
        else:
            decoded = decode_path(raw_path)
            path = clean_path(decoded)
        outcome = _Outcome(audit_id=new_audit_id())
        seen = _Seen(
            request.method,
            request.remote or "",
            request.headers.get("User-Agent", ""),
            request.raw_path,
        )
        status = 500

        def started() -> None:
            self._observe(seen, path, query, outcome, 101, received, t0, STAGE_STARTED)

        request[_STARTED_KEY] = started
        request[_PEER_WAIT_KEY] = outcome.add_peer_wait
        try:
            resp = await self._serve(request, handler, raw_path, decoded, path, query, outcome)
            status = resp.status
            return resp
        except web.HTTPException as e:
            status = e.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away (nginx's convention); the status line may be out
            raise
        finally:
            self._observe(seen, path, query, outcome, status, received, t0)

    async def _serve(
        self,
        request: web.Request,
        handler: Handler,
        raw_path: str,
        decoded: str,
        path: str,
        query: str,
        outcome: _Outcome,
    ) -> web.StreamResponse:
        if path != decoded:
            return _redirect(request, path, query)
        cls = self._table.classify(path)
        if cls is PathClass.REDIRECT:
            return _redirect(request, path + "/", query)
        if cls is PathClass.NOT_FOUND:
            return mux_not_found()
        if not path.isascii() and not is_valid_utf8(path):
            return go_error(400, "invalid UTF-8 in the request path")
        if self._gate is not None:
            got = await self._checked(_request_info(request, path), outcome)
            if got.response is not None:
                return got.response
            if got.consumed or got.rewritten:
                request = _strip_headers(request, got.consumed, got.rewritten)
            if got.user is not None:
                request[USER_KEY] = got.user
        else:
            outcome.attrs = attributes_for(request.method, path)
        request[ANNOTATIONS_KEY] = outcome.annotations
        request[AUDIT_ID_KEY] = outcome.audit_id
        msg = self._disabled_message(path)
        if msg is not None:
            return go_error(405, msg)
        if raw_path != path:
            request, handler = await _reroute(request, path, query)
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return restful_error(404, request.method)
        except web.HTTPMethodNotAllowed:
            return restful_error(405, request.method)
        except web.HTTPNotAcceptable:
            return restful_error(406, request.method)
        except web.HTTPException:
            raise
        except Exception as e:  # supervision point: the one place handler errors become HTTP
            return error_response(e)

    def _observe(
        self,
        seen: _Seen,
        path: str,
        query: str,
        outcome: _Outcome,
        status: int,
        received: float,
        t0: float,
        stage: str = STAGE_COMPLETE,
    ) -> None:
        attrs = outcome.attrs
        record = RequestRecord(
            port_kind=self._kind,
            method=seen.method,
            path=path,
            query=query,
            remote_addr=seen.remote,
            user_agent=seen.user_agent,
            user=outcome.user,
            verb=attrs.verb if attrs else "",
            resource="nodes",
            subresource=attrs.subresource if attrs else "",
            granted_subresource=outcome.granted,
            subresources=attrs.subresources if attrs else (),
            decision=outcome.decision,
            reason=outcome.reason,
            status=status,
            received_at=received,
            auth_duration_s=outcome.auth_s,
            duration_s=self._clock.monotonic() - t0,
            peer_wait_s=outcome.peer_wait_s,
            annotations=dict(outcome.annotations),
            audit_id=outcome.audit_id,
            request_uri=seen.request_uri,
            stage=stage,
        )
        # The observers (metrics, audit, request log) run at the loop's next turn, for every
        # request finished in this one: the answer goes out first, and a batch runs with its
        # code and data warm (~10 % of a /healthz answer's CPU). The record is complete now;
        # the audit writer batches lines for some milliseconds after this anyway.
        if not self._unobserved:
            asyncio.get_running_loop().call_soon(self._observe_batch)
        self._unobserved.append(record)

    def _observe_batch(self) -> None:
        batch, self._unobserved = self._unobserved, []
        for record in batch:
            try:
                self._observer.observe(record)
            except Exception:  # supervision point: an observer must never break a request
                log.exception("request observer failed")


class _Seen(NamedTuple):
    """What the audit event and request log need of the request itself."""

    method: str
    remote: str
    user_agent: str
    request_uri: str


def _lean_answer(resp: web.StreamResponse) -> LeanAnswer:
    """A refusal of the gate (``errors.plain``: a status, headers and a body) for the lean
    path to write."""
    assert isinstance(resp, web.Response) and isinstance(resp.body, bytes)
    return LeanAnswer(resp.status, tuple(resp.headers.items()), resp.body)


def _is_plain(raw_path: str) -> bool:
    """A request target path with no escapes, dot segments or empty segments: it is its own
    decoded and cleaned form (what ``decode_path`` and ``clean_path`` would return)."""
    return (
        raw_path[:1] == "/"
        and "%" not in raw_path
        and "/." not in raw_path
        and "//" not in raw_path
    )


def stream_started(request: web.Request) -> None:
    """Called by the streaming handlers just before their 101: audit the stream now (stage
    ResponseStarted), not only when the session ends, so it is on record even if the agent dies
    during the session. (An explicit call rather than aiohttp's on_response_prepare signal,
    which would cost every response an extra await.)"""
    started = request.get(_STARTED_KEY)
    if started is not None:
        started()


def peer_waited(request: web.Request, seconds: float) -> None:
    """Called by the streaming handlers with time spent waiting on the client (its streams
    to be created, its hang-up): the request log shows it apart from the duration, so the
    kubelet's own share of a session can be told from its client's (and the proxy's)."""
    add = request.get(_PEER_WAIT_KEY)
    if add is not None:
        add(seconds)


async def _reroute(request: web.Request, path: str, query: str) -> tuple[web.Request, Handler]:
    """Route on the decoded path (``/healthz%2Fping`` is ``/healthz/ping``, as in Go). The path
    is re-escaped exactly once and the query passed through untouched, so the handler decodes
    the same values the audit log does."""
    url = URL.build(path=escape_path(path), query_string=query, encoded=True)
    new = request.clone(rel_url=url)
    match_info = await request.app.router.resolve(new)
    match_info.add_app(request.app)
    match_info.freeze()
    new._match_info = match_info
    return new, match_info.handler


def _redirect(request: web.Request, path: str, query: str) -> web.Response:
    """Go's ``http.Redirect`` from the mux: the path escaped as ``URL.EscapedPath``, the query
    as received, non-ASCII hex-escaped, and the HTML body escaped."""
    location = escape_path(path) + ("?" + _hex_escape_unsafe(query) if query else "")
    resp = web.Response(status=301)
    resp.headers["Location"] = location
    if request.method in ("GET", "HEAD"):
        resp.headers["Content-Type"] = "text/html; charset=utf-8"
        resp.body = f'<a href="{html.escape(location)}">Moved Permanently</a>.\n\n'.encode()
    return resp


def _hex_escape_unsafe(text: str) -> str:
    """Go's ``hexEscapeNonASCII``, plus controls and space (never valid in a header value)."""
    raw = text.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if 0x20 < b < 0x7F else f"%{b:02X}" for b in raw)


def _strip_headers(
    request: web.Request, consumed: tuple[str, ...], rewritten: tuple[tuple[str, str], ...]
) -> web.Request:
    drop = {h.lower() for h in consumed}
    new = {k.lower(): v for k, v in rewritten}
    headers: CIMultiDict[str] = CIMultiDict()
    for k, v in request.headers.items():
        lk = k.lower()
        if lk in drop or lk in new:
            continue
        headers.add(k, v)
    for k, v in rewritten:
        if v:
            headers[k] = v
    return request.clone(headers=headers)

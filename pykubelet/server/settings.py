"""The server's composition API: what the agent hands ``KubeletServers``.

``ServerSettings`` is everything taken from configuration; ``ServerBackends`` is every live
dependency, including the routes other packages plug in (streaming, stats) and the request
observer the audit log implements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from pykubelet.auth.ratelimit import AuthFailureLimiter
from pykubelet.auth.types import Authenticator, Authorizer, UserInfo
from pykubelet.core.clock import Clock, SystemClock
from pykubelet.core.errors import InvalidInput
from pykubelet.pods.protocol import PodLister
from pykubelet.runtime.protocol import Runtime
from pykubelet.server.listener import GuardLimits

__all__ = [
    "HealthCheck",
    "JSONValue",
    "PortKind",
    "RequestObserver",
    "RequestRecord",
    "ServerBackends",
    "ServerSettings",
]

JSONValue = str | int | float | bool | None | Sequence["JSONValue"] | Mapping[str, "JSONValue"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """Server configuration (KubeletConfiguration names in comments). Defaults are secure."""

    node_name: str
    address: str = "0.0.0.0"  # address
    port: int = 10250  # port; 0 picks a free port (tests)
    read_only_port: int = 0  # readOnlyPort; 0 = off. Tests wanting an ephemeral one use -1.
    healthz_port: int = 10248  # healthzPort; 0 = off, -1 = ephemeral (tests)
    healthz_bind_address: str = "127.0.0.1"  # healthzBindAddress
    enable_server: bool = True  # enableServer
    tls_cert_file: str = ""  # tlsCertFile
    tls_private_key_file: str = ""  # tlsPrivateKeyFile
    tls_min_version: str = ""  # tlsMinVersion: "" (=VersionTLS12), VersionTLS12, VersionTLS13
    tls_cipher_suites: tuple[str, ...] = ()  # tlsCipherSuites, IANA names
    client_ca_file: str = ""  # authentication.x509.clientCAFile
    anonymous_enabled: bool = False  # authentication.anonymous.enabled
    enable_debugging_handlers: bool = True  # enableDebuggingHandlers
    enable_system_log_handler: bool = True  # enableSystemLogHandler
    system_log_dir: str = "/var/log"  # what /logs/ serves
    cert_dir: str = "/var/lib/pykubelet/pki"  # --cert-dir: self-signed kubelet.crt/.key
    streaming_connection_idle_timeout_s: float = 4 * 3600.0
    tls_reload_interval_s: float = 5.0  # check cert/key/client CA files for changes; 0 = never
    fine_grained_authz: bool = True  # try nodes/pods|healthz|configz before nodes/proxy
    configz: Mapping[str, JSONValue] = field(default_factory=dict)  # the config, JSON-able

    def __post_init__(self) -> None:
        if not self.node_name:
            raise InvalidInput("must not be empty", field="nodeName")
        for name, value, low in (
            ("port", self.port, 0),
            ("readOnlyPort", self.read_only_port, -1),
            ("healthzPort", self.healthz_port, -1),
        ):
            if not low <= value <= 65535:
                raise InvalidInput(f"{value} is not a port number (0-65535)", field=name)
        if self.port != 0 and self.port in (self.read_only_port, self.healthz_port):
            if self.address == self.healthz_bind_address or self.port == self.read_only_port:
                raise InvalidInput(f"port {self.port} is used twice", field="port")
        if self.streaming_connection_idle_timeout_s <= 0:
            raise InvalidInput("must be positive", field="streamingConnectionIdleTimeout")


class HealthCheck(Protocol):
    """One named /healthz check. ``check`` must not block; it returns an error text or None."""

    @property
    def name(self) -> str: ...

    def check(self) -> str | None: ...


PortKind = str  # "full" (10250), "read-only" (10255), "healthz" (10248)


@dataclass(slots=True, kw_only=True)
class RequestRecord:
    """One finished request, as the observer (request log, audit) sees it. Observers share
    one record and must not change it (not frozen: a frozen dataclass of this size costs a
    few microseconds to build, on every request).

    ``decision`` is ``allow``, ``forbid``, ``unauthenticated``, ``error`` (authorizer failed),
    or ``none`` (no auth on this port or the request ended before auth: 301/404 by path).
    """

    port_kind: PortKind
    method: str
    path: str  # the cleaned path
    query: str
    remote_addr: str
    user_agent: str
    user: UserInfo | None
    verb: str
    resource: str
    subresource: str
    subresources: tuple[str, ...]
    decision: str
    reason: str
    status: int
    received_at: float  # wall clock, seconds since the epoch
    auth_duration_s: float
    duration_s: float
    annotations: Mapping[str, str] = field(default_factory=dict)
    audit_id: str = ""  # also on the request as middleware.AUDIT_ID_KEY (recordings use it)
    granted_subresource: str = ""  # which of ``subresources`` allowed it (audit objectRef)
    request_uri: str = ""  # the request target exactly as received (audit requestURI)
    # ResponseComplete (once, when the request ends) or ResponseStarted (an upgraded stream
    # opened; observers that count finished requests ignore it).
    stage: str = "ResponseComplete"
    # of ``duration_s``, what an upgraded stream spent waiting on its client (stream creation,
    # hang-up); the rest is the kubelet's own share
    peer_wait_s: float = 0.0


class RequestObserver(Protocol):
    """Called exactly once per request when it completes (or fails), with stage
    ``ResponseComplete``; also when an upgraded stream opens, with stage ``ResponseStarted``.
    Must not block or raise."""

    def observe(self, record: RequestRecord) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerBackends:
    """Live dependencies of the servers.

    * ``authenticator`` None → x509 (if ``client_ca_file``) + anonymous (if enabled).
    * ``authorizer`` None → AlwaysAllow.
    * ``extra_routes`` are mounted on 10250 behind auth; ``extra_read_only_routes`` on 10255
      (no auth there). ``extra_debug_routes`` are mounted on 10250 only when debugging handlers
      are enabled; otherwise (and always on 10255) their paths answer 405.
    * ``observer`` None → a JSON request-log line per request
      (logger ``pykubelet.server.requests``).
    * ``health_checks`` are added to ping/log/syncloop on 10250 and 10255.
    """

    pods: PodLister
    runtime: Runtime
    authenticator: Authenticator | None = None
    authorizer: Authorizer | None = None
    extra_routes: Sequence[web.AbstractRouteDef] = ()
    extra_read_only_routes: Sequence[web.AbstractRouteDef] = ()
    extra_debug_routes: Sequence[web.AbstractRouteDef] = ()
    health_checks: Sequence[HealthCheck] = ()
    observer: RequestObserver | None = None
    clock: Clock = field(default_factory=SystemClock)
    # Slows down repeated authentication failures per address (auth/ratelimit.py); None = off.
    auth_limiter: AuthFailureLimiter | None = None
    # Connection caps and handshake/header deadlines (server/listener.py); None = defaults.
    connection_limits: GuardLimits | None = None

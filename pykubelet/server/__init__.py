"""The kubelet HTTP API: listeners, auth middleware, endpoints. Composition API below."""

from pykubelet.server.app import LOG_HUB, build_full_app, build_healthz_app, build_read_only_app
from pykubelet.server.errors import HttpError, error_response
from pykubelet.server.middleware import ANNOTATIONS_KEY, USER_KEY
from pykubelet.server.requestlog import JsonRequestLog
from pykubelet.server.servers import KubeletServers
from pykubelet.server.settings import (
    HealthCheck,
    JSONValue,
    RequestObserver,
    RequestRecord,
    ServerBackends,
    ServerSettings,
)
from pykubelet.server.tls import build_server_context

__all__ = [
    "ANNOTATIONS_KEY",
    "LOG_HUB",
    "HealthCheck",
    "HttpError",
    "JSONValue",
    "JsonRequestLog",
    "KubeletServers",
    "RequestObserver",
    "RequestRecord",
    "ServerBackends",
    "ServerSettings",
    "USER_KEY",
    "build_full_app",
    "build_healthz_app",
    "build_read_only_app",
    "build_server_context",
    "error_response",
]

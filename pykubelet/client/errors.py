"""What the client reports, as kubectl would, and the exit status each kind means.

ClientError (exit 1)
├── UsageError        bad flags or arguments (exit 1, as kubectl's "error: ...")
├── ConfigError       kubeconfig, certificate or key files unusable
├── ConnectionFailed  the kubelet could not be reached (TCP, TLS)
└── ServerError       the kubelet answered an error status: "Error from server (Reason): body"
"""

from __future__ import annotations

from pykubelet.core.errors import PykubeletError

__all__ = [
    "ClientError",
    "ConfigError",
    "ConnectionFailed",
    "ServerError",
    "UpgradeRefused",
    "UsageError",
]

# Status reasons kubectl prints for error statuses (metav1.StatusReason names).
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class ClientError(PykubeletError):
    """Printed as ``error: <message>`` (or the server form below); exit status 1."""

    def render(self) -> str:
        return f"error: {self}"


class UsageError(ClientError):
    pass


class ConfigError(ClientError):
    pass


class ConnectionFailed(ClientError):
    pass


class ServerError(ClientError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(body)
        self.status = status
        self.body = body

    @property
    def reason(self) -> str:
        return _REASONS.get(self.status, f"Status{self.status}")

    def render(self) -> str:
        text = self.body.strip() or f"the server answered {self.status}"
        return f"Error from server ({self.reason}): {text}"


class UpgradeRefused(ServerError):
    pass

"""The auth contract: who is asking (``UserInfo``), what they ask (``Attributes``), the answer.

No HTTP framework here: the server builds a ``RequestInfo`` from its request and hands it over.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "Attributes",
    "AuthResult",
    "Authenticator",
    "Authorizer",
    "Decision",
    "RequestInfo",
    "UserInfo",
    "AuthorizationResult",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestInfo:
    """What authenticators may look at. ``peer_cert_der`` is the leaf client certificate (DER)
    and ``peer_chain_der`` any intermediates the client sent."""

    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ", "
    remote_addr: str = ""
    peer_cert_der: bytes | None = None
    peer_chain_der: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResult:
    """An authenticator's answer: a user, or an error that must end in 401 (never anonymous).

    ``None`` from ``authenticate`` means "no opinion" (no credentials of this kind present)."""

    user: UserInfo | None = None
    error: str = ""
    # Headers to strip before the handler sees the request (Authorization, a WS token protocol).
    consumed_headers: tuple[str, ...] = ()
    # Headers to replace (lower-case name, new value) before the handler sees the request: the
    # WebSocket token authenticator removes only its own entry from Sec-WebSocket-Protocol.
    rewritten_headers: tuple[tuple[str, str], ...] = ()


class Authenticator(Protocol):
    async def authenticate(self, req: RequestInfo) -> AuthResult | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Attributes:
    """kubelet authorization attributes (reference §1.1): always resource ``nodes``."""

    user: UserInfo
    verb: str  # get, create, update, patch, delete, "" for HEAD/OPTIONS
    name: str  # the node name
    subresource: str  # proxy, stats, metrics, log, pods, healthz, configz, ...
    path: str
    api_group: str = ""
    api_version: str = "v1"
    resource: str = "nodes"
    namespace: str = ""


class Decision(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationResult:
    decision: Decision
    reason: str = ""


class Authorizer(Protocol):
    async def authorize(self, attrs: Attributes) -> AuthorizationResult:
        """Raise ``pykubelet.auth.AuthorizerError`` when the authorizer itself fails (HTTP 500)."""
        ...

"""Authentication and authorization for the kubelet API (no HTTP framework here)."""

from pykubelet.auth.alwaysallow import AlwaysAllowAuthorizer
from pykubelet.auth.anonymous import ANONYMOUS_USER, AnonymousAuthenticator
from pykubelet.auth.attributes import (
    STREAMING_PREFIXES,
    RequestAttributes,
    attributes_for,
    attributes_list,
)
from pykubelet.auth.chain import UnionAuthenticator, build_authenticator
from pykubelet.auth.types import (
    Attributes,
    Authenticator,
    AuthorizationResult,
    Authorizer,
    AuthResult,
    Decision,
    RequestInfo,
    UserInfo,
)
from pykubelet.auth.x509 import X509Authenticator, load_ca_bundle

__all__ = [
    "ANONYMOUS_USER",
    "AlwaysAllowAuthorizer",
    "AnonymousAuthenticator",
    "Attributes",
    "AuthResult",
    "Authenticator",
    "AuthorizationResult",
    "Authorizer",
    "Decision",
    "RequestAttributes",
    "RequestInfo",
    "STREAMING_PREFIXES",
    "UnionAuthenticator",
    "UserInfo",
    "X509Authenticator",
    "attributes_for",
    "attributes_list",
    "build_authenticator",
    "load_ca_bundle",
]

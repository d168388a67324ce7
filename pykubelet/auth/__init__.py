"""Authentication and authorization for the kubelet API (no HTTP framework here)."""

from pykubelet.auth.alwaysallow import AlwaysAllowAuthorizer
from pykubelet.auth.anonymous import ANONYMOUS_USER, AnonymousAuthenticator
from pykubelet.auth.attributes import (
    STREAMING_PREFIXES,
    RequestAttributes,
    attributes_for,
    attributes_list,
)
from pykubelet.auth.bearer import BearerAuthenticator, TokenAuthenticator, UnionTokenAuthenticator
from pykubelet.auth.chain import UnionAuthenticator, build_authenticator
from pykubelet.auth.errors import AuthorizerError, PolicyFileError, TokenFileError, WebhookError
from pykubelet.auth.kubeconfig import Kubeconfig, KubeconfigReviewPoster, load_kubeconfig
from pykubelet.auth.policy import PolicyAuthorizer
from pykubelet.auth.ratelimit import AuthFailureLimiter, LimiterSettings
from pykubelet.auth.setup import build_authorizer, build_token_authenticators
from pykubelet.auth.tokenfile import StaticTokenFile
from pykubelet.auth.tokenreview import TokenReviewAuthenticator
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
from pykubelet.auth.webhook_authz import WebhookAuthorizer
from pykubelet.auth.webhook_client import HTTPSReviewPoster, ReviewPoster
from pykubelet.auth.websocket_token import WebSocketTokenAuthenticator
from pykubelet.auth.x509 import X509Authenticator, load_ca_bundle

__all__ = [
    "AuthFailureLimiter",
    "AuthorizerError",
    "BearerAuthenticator",
    "HTTPSReviewPoster",
    "Kubeconfig",
    "KubeconfigReviewPoster",
    "LimiterSettings",
    "PolicyAuthorizer",
    "PolicyFileError",
    "ReviewPoster",
    "StaticTokenFile",
    "TokenAuthenticator",
    "TokenFileError",
    "TokenReviewAuthenticator",
    "UnionTokenAuthenticator",
    "WebSocketTokenAuthenticator",
    "WebhookAuthorizer",
    "WebhookError",
    "build_authorizer",
    "build_token_authenticators",
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
    "load_kubeconfig",
]

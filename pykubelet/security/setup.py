"""The security half of the composition root: from a ``KubeletConfiguration`` to the
authenticator, authorizer, audit observer, failure limiter, recorder factory and start-up warning
the servers are built with.

The agent calls ``build_security(config)`` once, passes the parts to ``ServerBackends``, prints
``parts.warning`` (if any) and runs ``parts.run_audit()`` beside the servers so the audit writer
is started and flushed on the way out. Construction reads the token and policy files (a bad one
stops the start with the line or document and field) but starts no thread.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from pykubelet.auth.chain import build_authenticator
from pykubelet.auth.kubeconfig import KubeconfigReviewPoster
from pykubelet.auth.ratelimit import AuthFailureLimiter
from pykubelet.auth.setup import build_authorizer, build_token_authenticators
from pykubelet.auth.types import Authenticator, Authorizer
from pykubelet.auth.webhook_client import ReviewPoster
from pykubelet.config import KubeletConfiguration
from pykubelet.core.clock import Clock, SystemClock
from pykubelet.security.recording import (
    AsciicastRecorderFactory,
    NullRecorderFactory,
    RecorderFactory,
)
from pykubelet.security.warnings import exposures, posture_from_config, warning_block
from pykubelet.server.audit import AuditLog, AuditObserver
from pykubelet.server.middleware import AUDIT_ID_KEY
from pykubelet.server.requestlog import JsonRequestLog
from pykubelet.server.settings import RequestObserver, RequestRecord

__all__ = [
    "FanOutObserver",
    "SecurityParts",
    "build_security",
    "posture_from_config",
    "request_audit_id",
]

log = logging.getLogger(__name__)


def request_audit_id(request: web.Request) -> str | None:
    """The audit ID the front door gave ``request`` (``StreamBackend.audit_id_of``), so a
    session recording is named like the request's audit event."""
    return request.get(AUDIT_ID_KEY)


class FanOutObserver:
    """Hands each finished request to every observer (request log, audit log)."""

    def __init__(self, *observers: RequestObserver) -> None:
        self._observers = observers

    def observe(self, record: RequestRecord) -> None:
        for o in self._observers:
            try:
                o.observe(record)
            except Exception:  # supervision point: one observer must not starve the others
                log.exception("request observer %r failed", o)


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityParts:
    authenticator: Authenticator
    authorizer: Authorizer
    observer: RequestObserver
    audit_log: AuditLog | None
    limiter: AuthFailureLimiter
    recorders: RecorderFactory
    warning: str  # the start-up warning block; "" when nothing is exposed

    async def run_audit(self) -> None:
        """Run the audit writer until cancelled, then flush what is queued."""
        if self.audit_log is None:
            return
        self.audit_log.start()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.to_thread(self.audit_log.close)


def build_security(
    cfg: KubeletConfiguration,
    *,
    clock: Clock | None = None,
    review_poster: ReviewPoster | None = None,
) -> SecurityParts:
    """Everything auth-related the servers need, from configuration. ``review_poster`` is the
    API-server client for TokenReview / SubjectAccessReview; by default one is built from the
    kubeconfig (node mode) when a webhook mode needs it, none when standalone."""
    clock = clock or SystemClock()
    needs_poster = cfg.authentication.webhook.enabled or cfg.authorization.mode == "Webhook"
    if review_poster is None and cfg.kubeconfig and needs_poster:
        review_poster = KubeconfigReviewPoster(cfg.kubeconfig)
    webhook_authn = review_poster if cfg.authentication.webhook.enabled else None
    tokens = build_token_authenticators(
        token_file=cfg.authentication.token_file,
        review_poster=webhook_authn,
        cache_ttl_s=cfg.authentication.webhook.cache_ttl_s,
        clock=clock,
    )
    authenticator = build_authenticator(
        client_ca_file=cfg.authentication.x509.client_ca_file,
        anonymous_enabled=cfg.authentication.anonymous.enabled,
        extra=tokens,
    )
    authz = cfg.authorization
    authorizer = build_authorizer(
        authz.mode,
        policy_file=authz.policy_file,
        policy_file_required=_names_policy_file(cfg),
        review_poster=review_poster,
        authorized_ttl_s=authz.webhook.cache_authorized_ttl_s,
        unauthorized_ttl_s=authz.webhook.cache_unauthorized_ttl_s,
        clock=clock,
    )
    audit_log: AuditLog | None = None
    observers: list[RequestObserver] = [JsonRequestLog()]
    if cfg.audit_log_path:
        audit_log = AuditLog(
            cfg.audit_log_path,
            max_bytes=cfg.audit_log_max_size_mb << 20,
            max_backups=cfg.audit_log_max_backup,
        )
        observers.append(AuditObserver(audit_log, node_name=cfg.node_name))
    recorders: RecorderFactory = NullRecorderFactory()
    if cfg.session_recording_dir:
        recorders = AsciicastRecorderFactory(cfg.session_recording_dir, clock=clock)
    return SecurityParts(
        authenticator=authenticator,
        authorizer=authorizer,
        observer=FanOutObserver(*observers),
        audit_log=audit_log,
        limiter=AuthFailureLimiter(),
        recorders=recorders,
        warning=warning_block(exposures(posture_from_config(cfg))),
    )


def _names_policy_file(cfg: KubeletConfiguration) -> bool:
    """Whether the policy file was named (must exist) or is the default location (may not)."""
    return Path(cfg.authorization.policy_file) != Path(cfg.root_dir) / "policy.yaml"

"""Client-certificate authentication against a CA bundle (reference §2.2, x509 step).

user = Subject CN, groups = Subject O values; the chain must verify against the bundle with the
clientAuth extended key usage. A presented certificate that does not verify is an error (401),
never a fall-through to anonymous. The bundle is re-read when its file changes.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from pykubelet.auth.types import AuthResult, RequestInfo, UserInfo
from pykubelet.core.errors import InvalidInput

__all__ = ["X509Authenticator", "load_ca_bundle"]


def load_ca_bundle(path: str) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle; ``InvalidInput`` naming the file if none or unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        certs = x509.load_pem_x509_certificates(data)
    except (OSError, ValueError) as e:
        raise InvalidInput(
            f"cannot load client CA bundle {path!r}: {e}", field="clientCAFile"
        ) from e
    if not certs:
        raise InvalidInput(f"no certificates in {path!r}", field="clientCAFile")
    return certs


# Kubernetes client certificates carry no subjectAltName (the WebPKI default requires one);
# everything else (chain, validity, basicConstraints, EKU clientAuth) is checked as usual.
_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca()


@dataclass(slots=True)
class _Bundle:
    mtime_ns: int
    store: Store


class X509Authenticator:
    """Authenticates the TLS client certificate carried in ``RequestInfo.peer_cert_der``.

    Successful verifications are cached per certificate for ``cache_ttl_s`` (never past the
    certificate's expiry, and dropped when the CA bundle changes): chain building is the
    costliest step of a request, and a client sends the same certificate every time."""

    def __init__(
        self,
        ca_file: str,
        *,
        cache_ttl_s: float = 60.0,
        cache_size: int = 1024,
        stat_interval_s: float = 1.0,
    ) -> None:
        self._ca_file = ca_file
        self._stat_interval_s = stat_interval_s
        self._next_stat = 0.0
        self._bundle = self._load()
        self._ttl = cache_ttl_s
        self._cache_size = cache_size
        self._cache: dict[tuple[bytes, tuple[bytes, ...]], tuple[float, AuthResult | None]] = {}

    def _load(self) -> _Bundle:
        mtime = os.stat(self._ca_file).st_mtime_ns if os.path.exists(self._ca_file) else 0
        return _Bundle(mtime_ns=mtime, store=Store(load_ca_bundle(self._ca_file)))

    def _store(self) -> Store:
        now = time.monotonic()
        if now < self._next_stat:
            return self._bundle.store
        self._next_stat = now + self._stat_interval_s
        try:
            mtime = os.stat(self._ca_file).st_mtime_ns
        except OSError:
            return self._bundle.store  # keep the last good bundle while the file is replaced
        if mtime != self._bundle.mtime_ns:
            try:
                self._bundle = self._load()
            except InvalidInput:
                pass
            self._cache.clear()
        return self._bundle.store

    async def authenticate(self, req: RequestInfo) -> AuthResult | None:
        if req.peer_cert_der is None:
            return None
        store = self._store()
        key = (req.peer_cert_der, req.peer_chain_der)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        res, valid_s = self._verify(req, store)
        if valid_s > 0:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[key] = (now + min(self._ttl, valid_s), res)
        return res

    def _verify(self, req: RequestInfo, store: Store) -> tuple[AuthResult | None, float]:
        """The result and how long it may be cached (0: not at all)."""
        assert req.peer_cert_der is not None
        try:
            leaf = x509.load_der_x509_certificate(req.peer_cert_der)
            intermediates = [x509.load_der_x509_certificate(d) for d in req.peer_chain_der]
        except ValueError as e:
            return AuthResult(error=f"malformed client certificate: {e}"), 0.0
        verifier = (
            PolicyBuilder()
            .store(store)
            .time(_dt.datetime.now(_dt.UTC))
            .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, intermediates)
        except VerificationError as e:
            return AuthResult(error=f"verifying certificate failed: {e}"), 0.0
        valid_s = (leaf.not_valid_after_utc - _dt.datetime.now(_dt.UTC)).total_seconds()
        cn = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        name = str(cn[0]) if cn else ""
        if not name:
            return None, valid_s
        groups = tuple(
            str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        )
        return AuthResult(user=UserInfo(name=name, groups=groups)), valid_s

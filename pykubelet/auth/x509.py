"""Client-certificate authentication against a CA bundle (reference §2.2, x509 step).

user = Subject CN (the last one when there are several, as Go's ``pkix.Name`` keeps it), groups
= Subject O values; the chain must verify against the bundle. A presented certificate that does
not verify is an error (401), never a fall-through to anonymous. The bundle is re-read when its
file changes.

What verifies is what Go's crypto/x509 accepts, not the stricter Web PKI profile: a CA needs
basicConstraints CA:TRUE but no keyUsage (``openssl req -x509`` makes none); the client
certificate needs no subjectAltName, no keyUsage, and either no extendedKeyUsage or one that
includes clientAuth (or any); every certificate must be within its validity. A version 1 client
certificate (what ``openssl x509 -req`` makes without an extension file) is accepted when a CA
of the bundle signed it directly. Deliberate difference: a version 1 CA is refused (the
verifier needs its basicConstraints).
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
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


def _client_auth_or_none(
    policy: object, cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None
) -> None:
    if eku is None:
        return
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku and (
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
    ):
        raise ValueError("EKU (extendedKeyUsage) does not include clientAuth")


def _is_ca(policy: object, cert: x509.Certificate, bc: x509.BasicConstraints) -> None:
    if not bc.ca:
        raise ValueError("basicConstraints CA is false")


_EE_POLICY = ExtensionPolicy.permit_all().may_be_present(
    x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _client_auth_or_none
)
_CA_POLICY = ExtensionPolicy.permit_all().require_present(
    x509.BasicConstraints, Criticality.AGNOSTIC, _is_ca
)


def _within_validity(cert: x509.Certificate, now: _dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _verify_v1(
    leaf: x509.Certificate, anchors: list[x509.Certificate], now: _dt.datetime
) -> str | None:
    """A version 1 leaf (no extensions, so no EKU to check) signed directly by a bundle CA;
    None when it verifies, else why not."""
    if not _within_validity(leaf, now):
        return "certificate has expired or is not yet valid"
    for ca in anchors:
        if ca.subject != leaf.issuer or not _within_validity(ca, now):
            continue
        try:
            leaf.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return None
    return "certificate signed by unknown authority"


@dataclass(slots=True)
class _Bundle:
    mtime_ns: int
    store: Store
    anchors: list[x509.Certificate]


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
        anchors = load_ca_bundle(self._ca_file)
        return _Bundle(mtime_ns=mtime, store=Store(anchors), anchors=anchors)

    def _current(self) -> _Bundle:
        now = time.monotonic()
        if now < self._next_stat:
            return self._bundle
        self._next_stat = now + self._stat_interval_s
        try:
            mtime = os.stat(self._ca_file).st_mtime_ns
        except OSError:
            return self._bundle  # keep the last good bundle while the file is replaced
        if mtime != self._bundle.mtime_ns:
            try:
                self._bundle = self._load()
            except InvalidInput:
                pass
            self._cache.clear()
        return self._bundle

    async def authenticate(self, req: RequestInfo) -> AuthResult | None:
        if req.peer_cert_der is None:
            return None
        bundle = self._current()
        key = (req.peer_cert_der, req.peer_chain_der)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        res, valid_s = self._verify(req, bundle)
        if valid_s > 0:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[key] = (now + min(self._ttl, valid_s), res)
        return res

    def _verify(self, req: RequestInfo, bundle: _Bundle) -> tuple[AuthResult | None, float]:
        """The result and how long it may be cached (0: not at all)."""
        assert req.peer_cert_der is not None
        try:
            leaf = x509.load_der_x509_certificate(req.peer_cert_der)
            intermediates = [x509.load_der_x509_certificate(d) for d in req.peer_chain_der]
        except ValueError as e:
            return AuthResult(error=f"malformed client certificate: {e}"), 0.0
        now = _dt.datetime.now(_dt.UTC)
        if leaf.version is x509.Version.v1:
            why = _verify_v1(leaf, bundle.anchors, now)
            if why is not None:
                return AuthResult(error=f"verifying certificate failed: {why}"), 0.0
        else:
            verifier = (
                PolicyBuilder()
                .store(bundle.store)
                .time(now)
                .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
                .build_client_verifier()
            )
            try:
                verifier.verify(leaf, intermediates)
            except VerificationError as e:
                return AuthResult(error=f"verifying certificate failed: {e}"), 0.0
        valid_s = (leaf.not_valid_after_utc - now).total_seconds()
        cn = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        name = str(cn[-1]) if cn else ""  # Go's pkix.Name keeps the last CN
        if not name:
            return None, valid_s
        groups = tuple(
            str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        )
        return AuthResult(user=UserInfo(name=name, groups=groups)), valid_s

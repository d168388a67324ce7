"""Certificate rotation: ``rotateCertificates`` (client) and ``serverTLSBootstrap`` (serving).

A ``CertificateRotator`` keeps ``<certDir>/<prefix>-current.pem`` signed by the cluster: at a
deadline drawn, as upstream's certificate manager draws it, between 70 % and 90 % of the
certificate's lifetime (from notBefore), it posts a new CSR with the node's current credentials,
waits for the signature and switches the symlink. Whoever reads the file picks the new one up:
the kubeconfig names the symlink (webhook clients, the CSR client), and the kubelet server's TLS
context is rebuilt when its files change (``server/tls_reload.py``). Established connections keep
their certificate, so a running exec is not dropped.

A failed rotation is retried with back-off (2 s doubling, at most 5 min, as upstream's 2 s x2
steps followed by its retry loop) while the current certificate still works.

Serving certificates (``kubernetes.io/kubelet-serving``) are approved by a person or a tool,
never by the controller-manager. Until the first one is signed the server uses a self-signed
placeholder at the same path (upstream refuses TLS handshakes instead; verifying clients such
as the API server with ``--kubelet-certificate-authority`` refuse both alike).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cryptography import x509

from pykubelet.auth.kubeconfig import load_kubeconfig
from pykubelet.config import KubeletConfiguration
from pykubelet.core.clock import Clock
from pykubelet.core.errors import InvalidInput
from pykubelet.node.bootstrap import (
    CLIENT_SIGNER,
    CLIENT_USAGES,
    SERVING_SIGNER,
    SERVING_USAGES,
    CertificateRequestFailed,
    CsrClient,
    IssuedPair,
    bootstrap_client_certificate,
    current_certificate,
    request_certificate,
    write_pair,
)
from pykubelet.security.certs import create_serving_cert

__all__ = [
    "CertificateRotator",
    "ensure_serving_placeholder",
    "is_placeholder",
    "prepare_node_certificates",
    "rotation_deadline",
]

log = logging.getLogger(__name__)

_RETRY_FIRST_S = 2.0
_RETRY_MAX_S = 300.0


def rotation_deadline(cert: x509.Certificate, rng: random.Random) -> dt.datetime:
    """notBefore + lifetime x U(0.7, 0.9): client-go's ``nextRotationDeadline``."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * (0.7 + 0.2 * rng.random())


def is_placeholder(cert: x509.Certificate) -> bool:
    """A self-signed certificate (the serving placeholder): to be replaced at once."""
    return cert.issuer == cert.subject


def ensure_serving_placeholder(cert_dir: str, node_name: str, now: dt.datetime) -> Path:
    """``<certDir>/kubelet-server-current.pem``: the signed one if valid, else a self-signed
    placeholder written there, so the server can start before the CSR is approved."""
    current = Path(cert_dir) / "kubelet-server-current.pem"
    if current_certificate(current, now) is not None:
        return current
    with tempfile.TemporaryDirectory(prefix="pykubelet-placeholder-") as d:
        pair = create_serving_cert(d, node_name, days=1)
        issued = IssuedPair(
            cert_pem=Path(pair.cert_file).read_bytes(), key_pem=Path(pair.key_file).read_bytes()
        )
    return write_pair(cert_dir, "kubelet-server", issued, now)


class CertificateRotator:
    """One certificate kept fresh; ``run()`` until cancelled. ``kind`` is "client" or
    "serving"; ``sans`` (serving) are the node's host names and addresses."""

    def __init__(
        self,
        *,
        kind: str,
        cert_dir: str,
        node_name: str,
        kubeconfig: str,
        clock: Clock,
        sans: Sequence[str] = (),
        rng: random.Random | None = None,
        csr_timeout_s: float = 900.0,
    ) -> None:
        if kind not in ("client", "serving"):
            raise InvalidInput(f"certificate kind {kind!r} is not client or serving", field="kind")
        self.kind = kind
        self._prefix = "kubelet-client" if kind == "client" else "kubelet-server"
        self._signer = CLIENT_SIGNER if kind == "client" else SERVING_SIGNER
        self._usages = CLIENT_USAGES if kind == "client" else SERVING_USAGES
        self._cert_dir = cert_dir
        self._node = node_name
        self._client = CsrClient(kubeconfig)
        self._clock = clock
        self._sans = tuple(sans) if kind == "serving" else ()
        self._rng = rng or random.Random()
        self._csr_timeout_s = csr_timeout_s
        self.rotations = 0  # certificates installed by this rotator (tests, metrics)

    @property
    def path(self) -> Path:
        return Path(self._cert_dir) / f"{self._prefix}-current.pem"

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock.now(), dt.UTC)

    def next_deadline(self) -> dt.datetime:
        """When to rotate: now if there is no valid signed certificate."""
        now = self._now()
        cert = current_certificate(self.path, now)
        if cert is None or is_placeholder(cert):
            return now
        return rotation_deadline(cert, self._rng)

    async def rotate(self) -> None:
        """One CSR, signed and installed (``CertificateRequestFailed`` otherwise)."""
        pair = await request_certificate(
            self._client,
            node_name=self._node,
            signer=self._signer,
            usages=self._usages,
            clock=self._clock,
            sans=self._sans,
            timeout_s=self._csr_timeout_s,
        )
        written = write_pair(self._cert_dir, self._prefix, pair, self._now())
        self.rotations += 1
        cert = pair.certificate
        log.info(
            "%s certificate rotated: %s, valid until %s",
            self.kind,
            written.resolve().name,
            cert.not_valid_after_utc.isoformat(),
        )

    async def run(self) -> None:
        retry = _RETRY_FIRST_S
        while True:
            wait = (self.next_deadline() - self._now()).total_seconds()
            if wait > 0:
                log.info("%s certificate: next rotation in %.0fs", self.kind, wait)
                await self._clock.sleep(wait)
            try:
                await self.rotate()
            except (CertificateRequestFailed, InvalidInput, ValueError, KeyError, OSError) as exc:
                # an unusable answer or a full disk: keep the current certificate, try again
                log.warning(
                    "%s certificate rotation failed (retry in %.0fs): %s", self.kind, retry, exc
                )
                await self._clock.sleep(retry)
                retry = min(retry * 2, _RETRY_MAX_S)
                continue
            retry = _RETRY_FIRST_S


async def prepare_node_certificates(
    cfg: KubeletConfiguration, clock: Clock, *, node_addresses: Sequence[str]
) -> tuple[KubeletConfiguration, list[CertificateRotator]]:
    """Before the agent builds anything: the TLS bootstrap (blocks until the client certificate
    is signed, as upstream), then the rotators to run. With ``serverTLSBootstrap`` the returned
    configuration serves ``<certDir>/kubelet-server-current.pem`` (``tlsCertFile`` ignored, as
    upstream)."""
    if cfg.bootstrap_kubeconfig:
        await bootstrap_client_certificate(
            kubeconfig=cfg.kubeconfig,
            bootstrap_kubeconfig=cfg.bootstrap_kubeconfig,
            cert_dir=cfg.cert_dir,
            node_name=cfg.node_name,
            clock=clock,
        )
    return _rotators(cfg, clock, node_addresses)


def _rotators(
    cfg: KubeletConfiguration, clock: Clock, node_addresses: Sequence[str]
) -> tuple[KubeletConfiguration, list[CertificateRotator]]:
    now = dt.datetime.fromtimestamp(clock.now(), dt.UTC)
    rotators: list[CertificateRotator] = []

    def rotator(kind: str, sans: Sequence[str] = ()) -> CertificateRotator:
        return CertificateRotator(
            kind=kind,
            cert_dir=cfg.cert_dir,
            node_name=cfg.node_name,
            kubeconfig=cfg.kubeconfig,
            clock=clock,
            sans=sans,
        )

    if cfg.rotate_certificates:
        client_pem = os.path.join(cfg.cert_dir, "kubelet-client-current.pem")
        named = load_kubeconfig(cfg.kubeconfig).cert_file  # absolute, as cert_dir is
        if named == client_pem:
            rotators.append(rotator("client"))
        else:
            log.warning(
                "rotateCertificates: NOT rotating: the kubeconfig's client certificate is %s, "
                "not %s (use --bootstrap-kubeconfig, which writes it)",
                named or "absent",
                client_pem,
            )
    if cfg.server_tls_bootstrap:
        serving = ensure_serving_placeholder(cfg.cert_dir, cfg.node_name, now)
        if cfg.tls_cert_file:
            log.warning("serverTLSBootstrap: tlsCertFile %s is ignored", cfg.tls_cert_file)
        cfg = replace(cfg, tls_cert_file=str(serving), tls_private_key_file=str(serving))
        rotators.append(rotator("serving", node_addresses))
    return cfg, rotators

"""TLS bootstrap (``--bootstrap-kubeconfig``), as the Go kubelet and ``kubeadm join`` do it.

At start, when the kubeconfig is missing or its client certificate has expired: reuse a valid
``<certDir>/kubelet-client-current.pem`` if there is one, else post a CertificateSigningRequest
(signer ``kubernetes.io/kube-apiserver-client-kubelet``, ``O=system:nodes``,
``CN=system:node:<name>``) with the bootstrap token, wait until the controller-manager approves
and signs it, and write the certificate and key as one PEM file (0600) with the
``-current.pem`` symlink pointing at it, then the kubeconfig (0600) naming that symlink. The next
start finds the kubeconfig valid and posts nothing.

The CSR plumbing here (key, request, wait, files) also serves rotation (``cert_rotation.py``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pykubelet.auth.kubeconfig import Kubeconfig, load_kubeconfig
from pykubelet.core.clock import Clock
from pykubelet.core.errors import InvalidInput, PykubeletError

__all__ = [
    "CLIENT_SIGNER",
    "CLIENT_USAGES",
    "SERVING_SIGNER",
    "SERVING_USAGES",
    "CertificateRequestFailed",
    "CsrClient",
    "IssuedPair",
    "bootstrap_client_certificate",
    "current_certificate",
    "request_certificate",
    "write_pair",
]

log = logging.getLogger(__name__)

CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
CLIENT_USAGES = ("digital signature", "key encipherment", "client auth")
SERVING_USAGES = ("digital signature", "key encipherment", "server auth")
_CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


class CertificateRequestFailed(PykubeletError):
    """The API server refused the CSR, or it was denied or failed, or never signed in time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedPair:
    """A signed certificate and its key (PEM), as written to ``<prefix>-<time>.pem``."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


class CsrClient:
    """Creates and reads CSRs with the credentials of a kubeconfig (re-read on every call, so
    a rotated certificate is used at once)."""

    def __init__(self, kubeconfig: str, *, timeout_s: float = 30.0) -> None:
        self._path = kubeconfig
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        kc = load_kubeconfig(self._path)
        headers = {"Accept": "application/json"}
        token = kc.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session:
                async with session.request(
                    method,
                    kc.server.rstrip("/") + path,
                    json=body,
                    headers=headers,
                    ssl=kc.ssl_context(),
                ) as resp:
                    data = await resp.read()
                    status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise CertificateRequestFailed(f"{method} {path}: {exc or type(exc).__name__}") from exc
        if not 200 <= status < 300:
            text = data[:300].decode("utf-8", "replace")
            raise CertificateRequestFailed(f"{method} {path}: HTTP {status}: {text}")
        try:
            answer = json.loads(data)
        except ValueError as exc:
            raise CertificateRequestFailed(f"{method} {path}: the answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise CertificateRequestFailed(f"{method} {path}: the answer is not an object")
        return answer

    async def create(self, csr: dict[str, Any]) -> str:
        created = await self._call("POST", _CSR_PATH, csr)
        name = (created.get("metadata") or {}).get("name")
        if not isinstance(name, str) or not name:
            raise CertificateRequestFailed("the created CSR has no metadata.name")
        return name

    async def get(self, name: str) -> dict[str, Any]:
        return await self._call("GET", f"{_CSR_PATH}/{name}")


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())  # ECDSA P-256, as the Go kubelet


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def csr_pem(key: ec.EllipticCurvePrivateKey, node_name: str, *, sans: Sequence[str] = ()) -> bytes:
    """A PKCS#10 request for ``system:node:<name>`` in ``system:nodes``; ``sans`` are DNS names
    or IP addresses (serving certificates)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}"),
        ]
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        names: list[x509.GeneralName] = []
        for san in dict.fromkeys(sans):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


async def request_certificate(
    client: CsrClient,
    *,
    node_name: str,
    signer: str,
    usages: Sequence[str],
    clock: Clock,
    sans: Sequence[str] = (),
    name: str = "",
    poll_s: float = 1.0,
    timeout_s: float = 900.0,
) -> IssuedPair:
    """Post a CSR (``name``, else ``generateName: csr-``) and wait for its certificate.
    Denied or failed: ``CertificateRequestFailed`` at once; not signed within ``timeout_s``
    (upstream waits 15 min at bootstrap): the same."""
    key = new_key()
    request = csr_pem(key, node_name, sans=sans)
    meta: dict[str, str] = {"name": name} if name else {"generateName": "csr-"}
    csr = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": meta,
        "spec": {
            "request": base64.b64encode(request).decode(),
            "signerName": signer,
            "usages": list(usages),
        },
    }
    created = await client.create(csr)
    log.info("certificate signing request %s posted (signer %s)", created, signer)
    deadline = clock.monotonic() + timeout_s
    while True:
        status = (await client.get(created)).get("status") or {}
        for cond in status.get("conditions") or ():
            if cond.get("type") in ("Denied", "Failed"):
                raise CertificateRequestFailed(
                    f"CSR {created} {cond['type'].lower()}: {cond.get('message', '')}"
                )
        cert = status.get("certificate")
        if cert:
            log.info("certificate signing request %s signed", created)
            try:
                pair = IssuedPair(cert_pem=base64.b64decode(cert), key_pem=_key_pem(key))
                pair.certificate  # noqa: B018 (parses: refuse garbage before writing it)
            except ValueError as exc:
                raise CertificateRequestFailed(f"CSR {created}: unusable certificate") from exc
            return pair
        if clock.monotonic() > deadline:
            raise CertificateRequestFailed(f"CSR {created} not signed after {timeout_s:.0f}s")
        await clock.sleep(poll_s)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_pair(cert_dir: str, prefix: str, pair: IssuedPair, now: dt.datetime) -> Path:
    """``<prefix>-<time>.pem`` (certificate then key, 0600) and the ``<prefix>-current.pem``
    symlink switched to it atomically; the path of the symlink."""
    d = Path(cert_dir)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = d / f"{prefix}-{now.strftime('%Y-%m-%d-%H-%M-%S')}.pem"
    _write_private(target, pair.cert_pem + pair.key_pem)
    current = d / f"{prefix}-current.pem"
    link = d / f".{prefix}-current.pem.tmp"
    link.unlink(missing_ok=True)
    link.symlink_to(target.name)
    os.replace(link, current)
    return current


def current_certificate(path: Path, now: dt.datetime) -> x509.Certificate | None:
    """The certificate in ``path`` if it can be read and has not expired."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    return cert if cert.not_valid_after_utc > now else None


def _kubeconfig_valid(path: str, now: dt.datetime) -> bool:
    try:
        kc = load_kubeconfig(path)
    except InvalidInput:
        return False
    if kc.cert_data:
        try:
            cert = x509.load_pem_x509_certificate(kc.cert_data)
        except ValueError:
            return False
        return cert.not_valid_after_utc > now
    if kc.cert_file:
        return current_certificate(Path(kc.cert_file), now) is not None
    return bool(kc.token or kc.token_file)


def write_kubeconfig(path: str, bootstrap: Kubeconfig, cert_path: Path) -> None:
    """The node's kubeconfig: the bootstrap kubeconfig's cluster, the rotating client PEM."""
    cluster: dict[str, Any] = {"server": bootstrap.server}
    if bootstrap.ca_data:
        cluster["certificate-authority-data"] = base64.b64encode(bootstrap.ca_data).decode()
    elif bootstrap.ca_file:
        cluster["certificate-authority"] = bootstrap.ca_file
    if bootstrap.insecure_skip_tls_verify:
        cluster["insecure-skip-tls-verify"] = True
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "default-cluster", "cluster": cluster}],
        "users": [
            {
                "name": "default-auth",
                "user": {"client-certificate": str(cert_path), "client-key": str(cert_path)},
            }
        ],
        "contexts": [
            {
                "name": "default-context",
                "context": {"cluster": "default-cluster", "user": "default-auth"},
            }
        ],
        "current-context": "default-context",
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _write_private(Path(path), yaml.safe_dump(doc).encode())


async def bootstrap_client_certificate(
    *,
    kubeconfig: str,
    bootstrap_kubeconfig: str,
    cert_dir: str,
    node_name: str,
    clock: Clock,
    timeout_s: float = 900.0,
) -> str:
    """Make ``kubeconfig`` usable; what was done: "kept", "reused" (a valid current PEM) or
    "requested" (a new CSR)."""
    now = dt.datetime.fromtimestamp(clock.now(), dt.UTC)
    if _kubeconfig_valid(kubeconfig, now):
        return "kept"
    bootstrap = load_kubeconfig(bootstrap_kubeconfig)  # InvalidInput names the file
    current = Path(cert_dir) / "kubelet-client-current.pem"
    if current_certificate(current, now) is not None:
        write_kubeconfig(kubeconfig, bootstrap, current)
        log.info("TLS bootstrap: reusing %s", current)
        return "reused"
    log.info("TLS bootstrap: requesting a client certificate for system:node:%s", node_name)
    # named node-csr-<digest> as upstream's bootstrap requests are
    digest = hashlib.sha256(f"{node_name}\0{bootstrap.server}\0{now.isoformat()}".encode())
    pair = await request_certificate(
        CsrClient(bootstrap_kubeconfig),
        node_name=node_name,
        signer=CLIENT_SIGNER,
        usages=CLIENT_USAGES,
        clock=clock,
        name=f"node-csr-{digest.hexdigest()[:32]}",
        timeout_s=timeout_s,
    )
    written = write_pair(cert_dir, "kubelet-client", pair, now)
    write_kubeconfig(kubeconfig, bootstrap, written)
    log.info(
        "TLS bootstrap: client certificate written to %s, kubeconfig to %s", written, kubeconfig
    )
    return "requested"

"""Client certificates made the ways people make them (issue #14, hole 13), verified as Go's
crypto/x509 does, through a real server over TLS on 127.0.0.1. The CAs and certificates are
made by the real ``openssl`` program: its defaults, a cfssl-style profile, a kubeadm-style one."""

from __future__ import annotations

import datetime
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pykubelet.auth.types import Attributes, AuthorizationResult, Decision
from pykubelet.server import ServerBackends
from tests.prereq import require_binary
from tests.server.harness import Pki, StaticPods, TinyRuntime, fetch, running, settings_for

CA_EXT = {
    # `openssl req -x509` with openssl.cnf's v3_ca: no keyUsage at all (the Kubernetes docs'
    # "Certificates" page makes CAs this way)
    "openssl": "",
    # cfssl's default CA profile
    "cfssl": "basicConstraints=critical,CA:TRUE,pathlen:2\n"
    "keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
    # kubeadm's CA (certutil.NewSelfSignedCACert)
    "kubeadm": "basicConstraints=critical,CA:TRUE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign\nsubjectKeyIdentifier=hash\n",
}
CLIENT_EXT = {
    "openssl": None,  # `openssl x509 -req` without an extension file: a version 1 certificate
    "cfssl": "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,"
    "keyEncipherment\nextendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid\n",
    "kubeadm": "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid\n",
}


@dataclass(frozen=True)
class Made:
    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(
        [require_binary("openssl"), *args], cwd=cwd, check=True, capture_output=True, text=True
    )


def _make_ca(d: Path, style: str) -> tuple[Path, Path]:
    d.mkdir(parents=True, exist_ok=True)
    args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.crt", "-days", "2", "-subj", f"/CN={style}-ca"]  # fmt: skip
    if CA_EXT[style]:  # else: the system openssl.cnf, as a user typing the command gets
        (d / "ca.cnf").write_text(
            "[req]\ndistinguished_name=dn\nx509_extensions=v3\n[dn]\n[v3]\n" + CA_EXT[style]
        )
        args += ["-config", "ca.cnf"]
    _openssl(*args, cwd=d)
    return d / "ca.crt", d / "ca.key"


def _make_expired(d: Path, ca: tuple[Path, Path]) -> Made:
    """openssl 3.0 cannot backdate: the expired client certificate is signed here with the
    openssl-made CA's key."""
    ca_cert = x509.load_pem_x509_certificate(ca[0].read_bytes())
    ca_key = serialization.load_pem_private_key(ca[1].read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    then = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(8)
        .not_valid_before(then)
        .not_valid_after(then + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (d / "old.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "old.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Made(ca=ca[0], cert=d / "old.crt", key=d / "old.key")


def _make_client(
    d: Path, ca: tuple[Path, Path], subject: str, ext: str | None, days: str = "1", name: str = "c"
) -> Made:
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", subject, cwd=d)  # fmt: skip
    args = ["x509", "-req", "-in", f"{name}.csr", "-CA", str(ca[0]), "-CAkey", str(ca[1]),
            "-set_serial", "7", "-out", f"{name}.crt"]  # fmt: skip
    args += ["-days", days]
    if ext is not None:
        (d / f"{name}.ext").write_text(ext)
        args += ["-extfile", f"{name}.ext"]
    _openssl(*args, cwd=d)
    return Made(ca=ca[0], cert=d / f"{name}.crt", key=d / f"{name}.key")


def _client(pki: Pki, made: Made) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki.ca.cert_file)  # trusts the serving cert
    ctx.load_cert_chain(str(made.cert), str(made.key))
    return ctx


def _backends() -> ServerBackends:
    return ServerBackends(pods=StaticPods(), runtime=TinyRuntime())


@pytest.mark.parametrize("style", ["openssl", "cfssl", "kubeadm"])
async def test_client_certificates_from_common_cas_authenticate(
    pki: Pki, tmp_path: Path, style: str
) -> None:
    ca = _make_ca(tmp_path / style, style)
    made = _make_client(tmp_path / style, ca, "/O=system:masters/CN=admin", CLIENT_EXT[style])
    async with running(settings_for(pki, client_ca_file=str(made.ca)), _backends()) as s:
        assert s.full_port is not None
        r = await fetch(s.full_port, "/pods", ctx=_client(pki, made))
    assert r.status == 200, (r.status, r.body)


async def test_what_go_refuses_is_refused(pki: Pki, tmp_path: Path) -> None:
    d = tmp_path / "neg"
    ca = _make_ca(d, "openssl")
    other = _make_ca(tmp_path / "other", "openssl")
    server_only = _make_client(d, ca, "/CN=admin", "extendedKeyUsage=serverAuth\n", name="srv")
    expired = _make_expired(d, ca)
    foreign = _make_client(d, other, "/CN=admin", CLIENT_EXT["cfssl"], name="foreign")
    foreign_v1 = _make_client(d, other, "/CN=admin", None, name="foreign1")
    async with running(settings_for(pki, client_ca_file=str(ca[0])), _backends()) as s:
        assert s.full_port is not None
        for made in (server_only, expired, foreign, foreign_v1):
            r = await fetch(s.full_port, "/pods", ctx=_client(pki, made))
            assert r.status == 401, (made.cert.name, r.status)


async def test_several_common_names_map_as_go_does(pki: Pki, tmp_path: Path) -> None:
    """Go's pkix.Name keeps the last CN: ``/CN=first/CN=admin`` is the user ``admin``."""
    d = tmp_path / "cn"
    ca = _make_ca(d, "kubeadm")
    made = _make_client(d, ca, "/O=system:masters/CN=nobody/CN=admin", CLIENT_EXT["kubeadm"])
    reversed_ = _make_client(
        d, ca, "/O=system:masters/CN=admin/CN=nobody", CLIENT_EXT["kubeadm"], name="rev"
    )
    backends = ServerBackends(
        pods=StaticPods(),
        runtime=TinyRuntime(),
        authorizer=_OnlyAdmin(),
    )
    async with running(settings_for(pki, client_ca_file=str(ca[0])), backends) as s:
        assert s.full_port is not None
        assert (await fetch(s.full_port, "/pods", ctx=_client(pki, made))).status == 200
        assert (await fetch(s.full_port, "/pods", ctx=_client(pki, reversed_))).status == 403


class _OnlyAdmin:
    async def authorize(self, attrs: Attributes) -> AuthorizationResult:

        ok = attrs.user.name == "admin"
        return AuthorizationResult(
            decision=Decision.ALLOW if ok else Decision.NO_OPINION, reason="test"
        )

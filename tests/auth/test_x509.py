"""X509Authenticator and the union chain (reference §2.2), with certificates made by certs.py."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pykubelet.auth import (
    AnonymousAuthenticator,
    AuthResult,
    RequestInfo,
    UnionAuthenticator,
    UserInfo,
    X509Authenticator,
    build_authenticator,
)
from pykubelet.core.errors import InvalidInput
from pykubelet.security.certs import (
    CertPair,
    create_ca,
    create_client_cert,
    create_serving_cert,
    load_pair,
)


def der(pair: CertPair) -> bytes:
    with open(pair.cert_file, "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).public_bytes(serialization.Encoding.DER)


def req(cert: bytes | None) -> RequestInfo:
    return RequestInfo(method="GET", path="/pods", headers={}, peer_cert_der=cert)


@pytest.fixture
def ca(tmp_path: Path) -> CertPair:
    return create_ca(str(tmp_path / "ca"))


async def test_user_is_cn_and_groups_are_o(tmp_path: Path, ca: CertPair) -> None:
    c = create_client_cert(str(tmp_path), "alice", ["dev", "ops"], ca=ca)
    res = await X509Authenticator(ca.cert_file).authenticate(req(der(c)))
    assert res is not None and res.user == UserInfo(name="alice", groups=("dev", "ops"))


async def test_no_certificate_is_no_opinion(ca: CertPair) -> None:
    assert await X509Authenticator(ca.cert_file).authenticate(req(None)) is None


async def test_untrusted_certificate_is_an_error(tmp_path: Path, ca: CertPair) -> None:
    other = create_ca(str(tmp_path / "other"))
    c = create_client_cert(str(tmp_path / "other"), "alice", ca=other)
    res = await X509Authenticator(ca.cert_file).authenticate(req(der(c)))
    assert res is not None and res.user is None and res.error


async def test_server_only_certificate_is_refused(tmp_path: Path, ca: CertPair) -> None:
    s = create_serving_cert(str(tmp_path), "node-a", ca=ca)  # EKU serverAuth only
    res = await X509Authenticator(ca.cert_file).authenticate(req(der(s)))
    assert res is not None and res.user is None and "EKU" in res.error


def _hand_made(ca: CertPair, *, cn: str, days_valid: int) -> bytes:
    ca_cert, ca_key = load_pair(ca)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _dt.datetime.now(_dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=10))
        .not_valid_after(now + _dt.timedelta(days=days_valid))
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


async def test_expired_certificate_is_an_error(ca: CertPair) -> None:
    res = await X509Authenticator(ca.cert_file).authenticate(
        req(_hand_made(ca, cn="x", days_valid=-1))
    )
    assert res is not None and res.user is None and res.error


async def test_no_eku_and_no_san_is_accepted_like_go(ca: CertPair) -> None:
    res = await X509Authenticator(ca.cert_file).authenticate(
        req(_hand_made(ca, cn="legacy", days_valid=5))
    )
    assert res is not None and res.user is not None and res.user.name == "legacy"


async def test_empty_cn_is_no_opinion(ca: CertPair) -> None:
    res = await X509Authenticator(ca.cert_file).authenticate(
        req(_hand_made(ca, cn="", days_valid=5))
    )
    assert res is None


async def test_garbage_is_an_error(ca: CertPair) -> None:
    res = await X509Authenticator(ca.cert_file).authenticate(req(b"\x30\x03garbage"))
    assert res is not None and res.error


def _write_bundle(path: Path, *cas: CertPair) -> None:
    path.write_bytes(b"".join(Path(c.cert_file).read_bytes() for c in cas))
    st = os.stat(path)  # a distinct mtime even on coarse-grained filesystems
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000 * len(cas)))


async def test_bundle_is_reloaded_when_the_file_changes(tmp_path: Path) -> None:
    ca1 = create_ca(str(tmp_path / "one"))
    ca2 = create_ca(str(tmp_path / "two"))
    bundle = tmp_path / "bundle.crt"
    _write_bundle(bundle, ca1)
    auth = X509Authenticator(str(bundle), stat_interval_s=0.0)
    c2 = der(create_client_cert(str(tmp_path / "two"), "bob", ca=ca2))
    rejected = await auth.authenticate(req(c2))
    assert rejected is not None and rejected.error
    _write_bundle(bundle, ca1, ca2)
    res = await auth.authenticate(req(c2))
    assert res is not None and res.user is not None and res.user.name == "bob"


def test_bad_bundle_names_the_field(tmp_path: Path) -> None:
    p = tmp_path / "bad.crt"
    p.write_text("not a certificate")
    with pytest.raises(InvalidInput, match="clientCAFile"):
        X509Authenticator(str(p))
    with pytest.raises(InvalidInput, match="clientCAFile"):
        X509Authenticator(str(tmp_path / "missing.crt"))


class Fixed:
    def __init__(self, res: AuthResult | None) -> None:
        self.res = res

    async def authenticate(self, req: RequestInfo) -> AuthResult | None:
        return self.res


async def test_union_rules() -> None:
    alice = UserInfo(name="alice", groups=("dev",))
    anon = AnonymousAuthenticator()
    # first user wins; system:authenticated appended
    res = await UnionAuthenticator([Fixed(None), Fixed(AuthResult(user=alice))], anon).authenticate(
        req(None)
    )
    assert res is not None and res.user == UserInfo(
        name="alice", groups=("dev", "system:authenticated")
    )
    # an error is never turned into anonymous
    res = await UnionAuthenticator([Fixed(AuthResult(error="bad cert"))], anon).authenticate(
        req(None)
    )
    assert res is not None and res.user is None and res.error == "bad cert"
    # all no-opinion → anonymous, without system:authenticated
    res = await UnionAuthenticator([Fixed(None)], anon).authenticate(req(None))
    assert res is not None and res.user == UserInfo(
        name="system:anonymous", groups=("system:unauthenticated",)
    )
    # ...or nothing at all when anonymous is off
    assert await UnionAuthenticator([Fixed(None)]).authenticate(req(None)) is None
    # a user already in system:authenticated is left alone
    pre = UserInfo(name="x", groups=("system:authenticated",))
    res = await UnionAuthenticator([Fixed(AuthResult(user=pre))]).authenticate(req(None))
    assert res is not None and res.user == pre


def test_build_authenticator_refuses_no_method() -> None:
    with pytest.raises(InvalidInput, match="No authentication method configured"):
        build_authenticator(client_ca_file="", anonymous_enabled=False)
    assert build_authenticator(client_ca_file="", anonymous_enabled=True)

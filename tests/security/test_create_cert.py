"""certs.create_cert: server, client, or both usages from one CA."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pykubelet.core.errors import InvalidInput
from pykubelet.security.certs import create_ca, create_cert


def _load(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def test_a_dual_use_certificate_carries_both_usages_and_the_loopback_names(tmp_path: Path) -> None:
    ca = create_ca(str(tmp_path), common_name="ca", days=1)
    pair = create_cert(
        str(tmp_path), "peer", ca=ca, common_name="peer", organizations=("g1",), server=True,
        client=True, days=1,
    )  # fmt: skip
    cert = _load(pair.cert_file)
    ekus = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(ekus) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "g1"
    assert cert.issuer == _load(ca.cert_file).subject
    assert (Path(pair.key_file).stat().st_mode & 0o777) == 0o600


def test_a_client_certificate_has_no_server_names(tmp_path: Path) -> None:
    ca = create_ca(str(tmp_path), days=1)
    cert = _load(create_cert(str(tmp_path), "c", ca=ca, common_name="alice", client=True).cert_file)
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_a_certificate_for_nothing_is_refused(tmp_path: Path) -> None:
    ca = create_ca(str(tmp_path), days=1)
    with pytest.raises(InvalidInput, match="server, a client or both"):
        create_cert(str(tmp_path), "x", ca=ca, common_name="x")


def _openssl(*args: str) -> str:
    import subprocess

    from tests.prereq import require_binary

    r = subprocess.run([require_binary("openssl"), *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_a_kubeadm_style_rsa_ca_signs_the_serving_cert_with_extra_names(tmp_path: Path) -> None:
    import datetime as dt

    from pykubelet.security.certs import certs_main

    # the CA as kubeadm makes it: RSA 2048, made here by openssl, not by us
    key, crt = str(tmp_path / "ca.key"), str(tmp_path / "ca.crt")
    _openssl("genrsa", "-out", key, "2048")
    _openssl(
        "req", "-x509", "-new", "-key", key, "-out", crt, "-days", "30", "-subj", "/CN=kubernetes",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
    )  # fmt: skip
    argv = ["serving", "--dir", str(tmp_path), "--node-name", "node-1", "--days", "30"]
    argv += ["--ip", "10.0.0.5", "--ip", "fd00::5", "--dns", "node-1.example.org"]
    assert certs_main(argv) == 0
    leaf = str(tmp_path / "kubelet.crt")
    assert _openssl("verify", "-CAfile", crt, leaf).strip() == f"{leaf}: OK"
    cert = _load(leaf)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {
        "node-1",
        "localhost",
        "node-1.example.org",
    }
    assert {str(a) for a in sans.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "::1",
        "10.0.0.5",
        "fd00::5",
    }
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=30) < life <= dt.timedelta(days=30, minutes=5)
    assert certs_main(["serving", "--dir", str(tmp_path), "--node-name", "n", "--ip", "x"]) == 2


@pytest.mark.parametrize("key_type", ["rsa", "ec"])
def test_certs_ca_makes_rsa_or_ec_cas_that_openssl_accepts(tmp_path: Path, key_type: str) -> None:
    from pykubelet.security.certs import certs_main

    assert certs_main(["ca", "--dir", str(tmp_path), "--key-type", key_type, "--days", "10"]) == 0
    assert certs_main(["client", "alice", "--dir", str(tmp_path), "--days", "2"]) == 0
    ca, leaf = str(tmp_path / "ca.crt"), str(tmp_path / "alice.crt")
    assert _openssl("verify", "-CAfile", ca, leaf).strip() == f"{leaf}: OK"
    text = _openssl("x509", "-in", ca, "-noout", "-text")
    assert ("rsaEncryption" in text) == (key_type == "rsa")
    assert ("id-ecPublicKey" in text) == (key_type == "ec")
    assert certs_main(["ca", "--dir", str(tmp_path / "x"), "--days", "0"]) == 2

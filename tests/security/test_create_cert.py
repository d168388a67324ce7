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

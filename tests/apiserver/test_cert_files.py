"""The file side of TLS bootstrap and rotation, without a cluster: the rotation deadline, the
current-PEM symlink, the serving placeholder, reuse at start, and refusals by name."""

from __future__ import annotations

import datetime as dt
import functools
import os
import random
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pykubelet.config import ConfigError, load_config
from pykubelet.core.clock import FakeClock
from pykubelet.node.bootstrap import IssuedPair, bootstrap_client_certificate, write_pair
from pykubelet.node.cert_rotation import (
    CertificateRotator,
    ensure_serving_placeholder,
    is_placeholder,
    rotation_deadline,
)
from tests.apiserver.controlplane import kubeconfig

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _pair(not_before: dt.datetime, not_after: dt.datetime, *, issuer: str = "ca") -> IssuedPair:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system:node:n")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return IssuedPair(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )


class _FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(("draw", "seconds"), [(0.0, 700), (0.5, 800), (1.0, 900)])
def test_rotation_deadline_is_70_to_90_percent_of_the_lifetime(draw: float, seconds: int) -> None:
    cert = _pair(T0, T0 + dt.timedelta(seconds=1000)).certificate
    assert rotation_deadline(cert, _FixedRandom(draw)) == T0 + dt.timedelta(seconds=seconds)


def test_write_pair_switches_the_current_symlink(tmp_path: Path) -> None:
    first = write_pair(str(tmp_path), "kubelet-client", _pair(T0, T0 + dt.timedelta(days=1)), T0)
    target1 = first.resolve()
    later = T0 + dt.timedelta(hours=1)
    second = write_pair(
        str(tmp_path), "kubelet-client", _pair(T0, T0 + dt.timedelta(days=2)), later
    )
    assert first == second == tmp_path / "kubelet-client-current.pem"
    assert second.is_symlink() and second.resolve() != target1
    assert second.resolve().name == "kubelet-client-2026-01-01-01-00-00.pem"
    assert stat.S_IMODE(os.stat(second).st_mode) == 0o600
    assert b"PRIVATE KEY" in second.read_bytes() and b"CERTIFICATE" in second.read_bytes()


async def test_the_serving_placeholder_is_replaced_first(tmp_path: Path) -> None:
    clock = FakeClock()
    now = dt.datetime.fromtimestamp(clock.now(), dt.UTC)
    current = ensure_serving_placeholder(str(tmp_path), "node-a", now)
    cert = x509.load_pem_x509_certificate(current.read_bytes())
    assert is_placeholder(cert)
    assert ensure_serving_placeholder(str(tmp_path), "node-a", now).resolve() == current.resolve()
    rotator = CertificateRotator(
        kind="serving",
        cert_dir=str(tmp_path),
        node_name="node-a",
        kubeconfig=str(tmp_path / "none"),
        clock=clock,
    )
    assert rotator.next_deadline() == now  # a placeholder is due at once


async def test_a_valid_kubeconfig_is_kept_and_a_valid_current_pem_reused(tmp_path: Path) -> None:
    clock = FakeClock(wall_offset=T0.timestamp())
    now = dt.datetime.fromtimestamp(clock.now(), dt.UTC)
    pki = tmp_path / "pki"
    current = write_pair(str(pki), "kubelet-client", _pair(T0, now + dt.timedelta(days=1)), now)
    boot = kubeconfig(
        tmp_path / "bootstrap", server="https://127.0.0.1:1", ca_file="/ca.crt", token="a.b"
    )
    kc = tmp_path / "kubelet.kubeconfig"
    bootstrap = functools.partial(
        bootstrap_client_certificate,
        kubeconfig=str(kc),
        bootstrap_kubeconfig=str(boot),
        cert_dir=str(pki),
        node_name="n",
        clock=clock,
    )
    # no kubeconfig yet, a valid certificate: reused, nothing asked of the (absent) API server
    assert await bootstrap() == "reused"
    assert stat.S_IMODE(os.stat(kc).st_mode) == 0o600
    assert f"client-certificate: {current}" in kc.read_text()
    assert await bootstrap() == "kept"


def test_a_bootstrap_kubeconfig_without_a_kubeconfig_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(["--bootstrap-kubeconfig", "/b"])
    assert any(
        p.startswith("--bootstrap-kubeconfig: needs --kubeconfig") for p in err.value.problems
    )


def test_rotation_settings_load_without_a_kubeconfig() -> None:
    """kubeadm writes rotateCertificates into every config; standalone, it only warns at start."""
    c = load_config(["--rotate-certificates", "--rotate-server-certificates"])
    assert c.rotate_certificates and c.server_tls_bootstrap and not c.kubeconfig

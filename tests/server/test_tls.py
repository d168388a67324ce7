"""Serving TLS: self-signed fallback, tlsMinVersion, tlsCipherSuites (reference §2.5)."""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from pykubelet.core.errors import InvalidInput
from pykubelet.security.certs import certs_main
from pykubelet.server import ServerBackends, build_server_context
from pykubelet.server.tls import CIPHER_SUITES, accepts_untrusted_client_certs
from tests.server.harness import Pki, StaticPods, TinyRuntime, fetch, running, settings_for


def backends() -> ServerBackends:
    return ServerBackends(pods=StaticPods(), runtime=TinyRuntime())


async def test_self_signed_certificate_is_generated_once(tmp_path: Path, pki: Pki) -> None:
    cert_dir = tmp_path / "pki"
    settings = settings_for(pki, tls_cert_file="", tls_private_key_file="", cert_dir=str(cert_dir))
    async with running(settings, backends()) as s:
        assert s.full_port
        crt = (cert_dir / "kubelet.crt").read_bytes()
        ctx = ssl.create_default_context(cafile=str(cert_dir / "kubelet.crt"))
        ctx.load_cert_chain(pki.admin.cert_file, pki.admin.key_file)
        r = await fetch(s.full_port, "/healthz", ctx=ctx)  # verifies SAN 127.0.0.1
        assert (r.status, r.body) == (200, b"ok")
    cert = x509.load_pem_x509_certificate(crt)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "node-a" in san.get_values_for_type(x509.DNSName)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert {str(i) for i in san.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1"}
    async with running(settings, backends()):
        assert (cert_dir / "kubelet.crt").read_bytes() == crt  # reused, not regenerated


async def test_tls13_minimum_refuses_tls12_clients(pki: Pki) -> None:
    async with running(settings_for(pki, tls_min_version="VersionTLS13"), backends()) as s:
        assert s.full_port
        ctx = pki.client_context(pki.admin)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError):
            await fetch(s.full_port, "/healthz", ctx=ctx)
        ok = pki.client_context(pki.admin)
        assert (await fetch(s.full_port, "/healthz", ctx=ok)).status == 200


async def test_cipher_suites_are_honoured(pki: Pki) -> None:
    suites = ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",)
    async with running(settings_for(pki, tls_cipher_suites=suites), backends()) as s:
        assert s.full_port
        ctx = pki.client_context(pki.admin)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        with pytest.raises(ssl.SSLError):
            await fetch(s.full_port, "/healthz", ctx=ctx)
        ctx = pki.client_context(pki.admin)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        assert (await fetch(s.full_port, "/healthz", ctx=ctx)).status == 200


def test_bad_tls_settings_name_the_field(pki: Pki) -> None:
    build = functools.partial(
        build_server_context, cert_file=pki.serving.cert_file, key_file=pki.serving.key_file
    )
    with pytest.raises(InvalidInput, match=r"tlsCipherSuites.*TLS_FOO"):
        build(cipher_suites=("TLS_FOO",))
    with pytest.raises(InvalidInput, match="tlsMinVersion"):
        build(min_version="VersionTLS10")
    with pytest.raises(InvalidInput, match="tlsCertFile"):
        build_server_context(cert_file="/nonexistent.crt", key_file="/nonexistent.key")
    with pytest.raises(InvalidInput, match="clientCAFile"):
        build(client_ca_file="/nonexistent-ca.crt")
    # TLS 1.3 names are accepted and ignored, as in Go
    build(cipher_suites=("TLS_AES_128_GCM_SHA256",))


def test_every_mapped_suite_is_known_to_openssl(pki: Pki) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for iana, name in CIPHER_SUITES.items():
        if "3DES" in iana or "CBC" in iana:
            continue  # may be compiled out or below the security level
        ctx.set_ciphers(name)  # raises for an unknown OpenSSL name


def test_untrusted_client_certs_reach_the_application(pki: Pki) -> None:
    ctx = build_server_context(
        cert_file=pki.serving.cert_file,
        key_file=pki.serving.key_file,
        client_ca_file=pki.ca.cert_file,
    )
    assert accepts_untrusted_client_certs(ctx)
    assert ctx.verify_mode == ssl.CERT_OPTIONAL


def test_no_session_tickets_are_issued(pki: Pki) -> None:
    """client-go never resumes a session: a ticket would be work thrown away (TLS 1.3)."""
    server = build_server_context(
        cert_file=pki.serving.cert_file,
        key_file=pki.serving.key_file,
        client_ca_file=pki.ca.cert_file,
    )
    wire = [ssl.MemoryBIO() for _ in range(4)]
    c = pki.client_context(pki.admin).wrap_bio(wire[0], wire[1], server_hostname="node-a")
    s = server.wrap_bio(wire[2], wire[3], server_side=True)
    for _ in range(4):  # hello, server flight, client finished: a few turns each way
        for side in (c, s):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        wire[2].write(wire[1].read())
        wire[0].write(wire[3].read())
    s.write(b"x")  # tickets, when sent, go before the first application data
    wire[0].write(wire[3].read())
    assert c.read(1) == b"x"
    assert c.version() == "TLSv1.3"
    assert c.session is not None and not c.session.has_ticket


def test_certs_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "pki")
    assert certs_main(["ca", "--dir", d]) == 0
    assert certs_main(["serving", "--dir", d, "--node-name", "node-a"]) == 0
    assert certs_main(["client", "system:admin", "--group", "system:masters", "--dir", d]) == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "pki" / "system-admin.crt").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=system:admin,O=system:masters"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert oct((tmp_path / "pki" / "system-admin.key").stat().st_mode & 0o777) == "0o600"
    assert certs_main(["client", "", "--dir", d]) == 2
    assert "user name" in capsys.readouterr().err


async def test_reload_tls_serves_the_new_certificate(tmp_path: Path, pki: Pki) -> None:
    import shutil

    from pykubelet.security.certs import create_serving_cert, load_pair

    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(pki.serving.cert_file, live / "kubelet.crt")
    shutil.copy(pki.serving.key_file, live / "kubelet.key")
    settings = settings_for(
        pki,
        tls_cert_file=str(live / "kubelet.crt"),
        tls_private_key_file=str(live / "kubelet.key"),
    )

    def served_serial(port: int) -> int:
        import socket

        ctx = pki.client_context(pki.admin)
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number

    import asyncio

    async with running(settings, backends()) as s:
        assert s.full_port
        first = await asyncio.to_thread(served_serial, s.full_port)
        fresh = create_serving_cert(str(tmp_path / "fresh"), "node-a", ca=pki.ca)
        shutil.copy(fresh.cert_file, live / "kubelet.crt")
        shutil.copy(fresh.key_file, live / "kubelet.key")
        s.reload_tls()
        second = await asyncio.to_thread(served_serial, s.full_port)
        assert first != second
        assert second == load_pair(fresh)[0].serial_number
        # client certificates still authenticate, untrusted ones still get 401
        r = await fetch(s.full_port, "/pods", ctx=pki.client_context(pki.admin))
        assert r.status == 200
        r = await fetch(s.full_port, "/pods", ctx=pki.client_context(pki.rogue))
        assert (r.status, r.body) == (401, b"Unauthorized")
        (live / "kubelet.key").write_text("garbage")
        with pytest.raises(InvalidInput):
            s.reload_tls()
        assert await asyncio.to_thread(served_serial, s.full_port) == second


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"node_name": ""}, "nodeName"),
        ({"port": 70000}, "port"),
        ({"read_only_port": -5}, "readOnlyPort"),
        ({"healthz_port": 65536}, "healthzPort"),
        ({"port": 10250, "read_only_port": 10250}, "port"),
        ({"streaming_connection_idle_timeout_s": 0}, "streamingConnectionIdleTimeout"),
    ],
)
def test_settings_validation_names_the_field(kw: dict[str, object], field: str) -> None:
    from pykubelet.server import ServerSettings

    base: dict[str, object] = {"node_name": "n"}
    base.update(kw)
    with pytest.raises(InvalidInput) as e:
        ServerSettings(**base)  # type: ignore[arg-type]
    assert e.value.field == field

"""A real aiohttp server with the streaming routes, over real TLS on 127.0.0.1:0."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pykubelet.server.streams import StreamBackend, stream_routes
from tests.streaming.local_runtime import LocalRuntime, StaticPods, make_pod


@dataclass
class StreamServer:
    host: str
    port: int
    runtime: LocalRuntime
    ca_file: str
    tls: bool

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def client_ssl(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file)
        return ctx

    def ws_ssl(self) -> ssl.SSLContext | bool:
        """``client_ssl()`` as aiohttp's ``ssl=`` wants it: True (its default) for no context."""
        return self.client_ssl() or True


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def make_tls_files(d: Path) -> tuple[str, str]:
    """A self-signed serving certificate for 127.0.0.1 and its key, as PEM files in ``d``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = d / "tls.crt", d / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


async def start_server(
    tls_files: tuple[str, str] | None,
    *,
    runtime: LocalRuntime | None = None,
    idle_timeout_s: float = 3600.0,
    creation_timeout_s: float = 30.0,
    recorder_factory: object = None,
    audit_id_of: object = None,
    middlewares: tuple[object, ...] = (),
) -> tuple[web.AppRunner, StreamServer]:
    runtime = runtime or LocalRuntime()
    pods = StaticPods(
        [
            make_pod(containers=(("main", "local://c1", False), ("gone", "", False))),
            make_pod(name="tty", uid="uid-2", containers=(("main", "local://c1", True),)),
        ]
    )
    backend = StreamBackend(
        pods=pods,
        runtime=runtime,  # type: ignore[arg-type]
        streaming=runtime,
        idle_timeout_s=idle_timeout_s,
        creation_timeout_s=creation_timeout_s,
        recorder_factory=recorder_factory,  # type: ignore[arg-type]
        audit_id_of=audit_id_of,  # type: ignore[arg-type]
    )
    runner, port = await serve_backend(backend, tls_files, middlewares=middlewares)
    ca = tls_files[0] if tls_files else ""
    return runner, StreamServer("127.0.0.1", port, runtime, ca, tls_files is not None)


async def serve_backend(
    backend: StreamBackend,
    tls_files: tuple[str, str] | None,
    *,
    middlewares: tuple[object, ...] = (),
) -> tuple[web.AppRunner, int]:
    """The streaming routes alone on 127.0.0.1:0, over TLS when ``tls_files`` are given."""
    app = web.Application(middlewares=middlewares)  # type: ignore[arg-type]
    app.add_routes(stream_routes(backend))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ssl_ctx = None
    if tls_files is not None:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(*tls_files)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_ctx)
    await site.start()
    return runner, int(runner.addresses[0][1])


@pytest.fixture
async def server(tls_files: tuple[str, str]) -> AsyncIterator[StreamServer]:
    runner, srv = await start_server(tls_files)
    try:
        yield srv
    finally:
        await runner.cleanup()
        for proc in list(srv.runtime.running):
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()


@pytest.fixture
async def plain_server() -> AsyncIterator[StreamServer]:
    runner, srv = await start_server(None)
    try:
        yield srv
    finally:
        await runner.cleanup()

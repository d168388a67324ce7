"""Certificate, key and client CA reloaded from disk for new connections, without a restart."""

from __future__ import annotations

import asyncio
import http.client
import shutil
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509

from pykubelet.server.tls_reload import ReloadingTLS
from tests.security.pki import CA, Pair


@dataclass
class Files:
    cert: Path
    key: Path
    ca: Path


def install(pair: Pair, ca: CA, files: Files) -> None:
    # Write beside and rename, as a careful operator (or cert-manager) does.
    for src, dst in ((pair.cert, files.cert), (pair.key, files.key), (ca.cert_path, files.ca)):
        tmp = dst.with_suffix(".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)


def builder(files: Files) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(files.cert), str(files.key))
    ctx.load_verify_locations(cafile=str(files.ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[int, ReloadingTLS, Files, dict[str, CA]]]:
    cas = {"one": CA(tmp_path / "one", "ca-one"), "two": CA(tmp_path / "two", "ca-two")}
    files = Files(tmp_path / "srv.crt", tmp_path / "srv.key", tmp_path / "client-ca.crt")
    install(cas["one"].issue("s1", cn="node", server=True), cas["one"], files)
    tls = ReloadingTLS(lambda: builder(files), [str(files.cert), str(files.key), str(files.ca)])

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port, tls, files, cas
    finally:
        await runner.cleanup()


def client(ca: CA, pair: Pair) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    ctx.load_cert_chain(str(pair.cert), str(pair.key))
    return ctx


def get(port: int, ctx: ssl.SSLContext) -> tuple[int, str]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        der = conn.sock.getpeercert(binary_form=True)
        assert der is not None  # binary_form: None only without a peer certificate
        issuer = x509.load_der_x509_certificate(der).issuer.rfc4514_string()
        return resp.status, issuer
    finally:
        conn.close()


async def test_new_connections_get_new_cert_and_ca(
    server: tuple[int, ReloadingTLS, Files, dict[str, CA]],
) -> None:
    port, tls, files, cas = server
    one, two = cas["one"], cas["two"]
    c1 = client(one, one.issue("c1", cn="alice"))
    c2 = client(two, two.issue("c2", cn="bob"))
    assert await asyncio.to_thread(get, port, c1) == (200, "CN=ca-one")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.to_thread(get, port, c2)  # CA two is not trusted yet
    assert tls.check() is False  # nothing changed

    # An established keep-alive connection survives the rotation.
    kept = http.client.HTTPSConnection("127.0.0.1", port, context=c1, timeout=10)

    def first() -> int:
        kept.request("GET", "/")
        resp = kept.getresponse()
        resp.read()
        return resp.status

    assert await asyncio.to_thread(first) == 200

    install(two.issue("s2", cn="node", server=True), two, files)
    assert tls.check() is True and tls.reloads == 1
    assert await asyncio.to_thread(get, port, c2) == (200, "CN=ca-two")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.to_thread(get, port, c1)  # CA one removed: its clients are refused

    def again() -> int:
        kept.request("GET", "/")
        status = kept.getresponse().status
        kept.close()
        return status

    assert await asyncio.to_thread(again) == 200


async def test_broken_files_keep_the_working_context(
    server: tuple[int, ReloadingTLS, Files, dict[str, CA]],
) -> None:
    port, tls, files, cas = server
    one = cas["one"]
    c1 = client(one, one.issue("c1", cn="alice"))
    files.key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    assert tls.check() is False
    assert tls.reload_errors == 1
    assert await asyncio.to_thread(get, port, c1) == (200, "CN=ca-one")
    # The rest of the rotation arrives: the next check picks it up.
    install(one.issue("s3", cn="node", server=True), one, files)
    assert tls.check() is True
    assert await asyncio.to_thread(get, port, c1) == (200, "CN=ca-one")


async def test_run_polls_until_cancelled(
    server: tuple[int, ReloadingTLS, Files, dict[str, CA]],
) -> None:
    _, tls, files, cas = server
    task = asyncio.create_task(tls.run(interval=0.02))
    try:
        install(cas["two"].issue("s4", cn="node", server=True), cas["two"], files)
        for _ in range(500):  # bounded: 10 s
            if tls.reloads:
                break
            await asyncio.sleep(0.02)
        assert tls.reloads == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

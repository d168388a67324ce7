"""A real HTTPS endpoint speaking TokenReview / SubjectAccessReview JSON, for the webhook tests."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.security.pki import CA, Pair

Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


@dataclass
class ReviewServer:
    url: str
    ca: CA
    client: Pair
    bodies: list[dict[str, Any]] = field(default_factory=list)
    client_cns: list[str] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to this many requests first

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca.cert_path))
        ctx.load_cert_chain(str(self.client.cert), str(self.client.key))
        return ctx


@asynccontextmanager
async def review_server(tmp_path: Path, answer: Answer) -> AsyncIterator[ReviewServer]:
    ca = CA(tmp_path / "pki")
    server_pair = ca.issue("apiserver", cn="apiserver", server=True, client=False)
    client_pair = ca.issue("kubelet-client", cn="system:node:test", orgs=("system:nodes",))
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(str(server_pair.cert), str(server_pair.key))
    sctx.load_verify_locations(cafile=str(ca.cert_path))
    sctx.verify_mode = ssl.CERT_REQUIRED
    state: dict[str, ReviewServer] = {}

    async def handle(request: web.Request) -> web.Response:
        srv = state["srv"]
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        cn = ""
        for rdn in (peer or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
        srv.client_cns.append(cn)
        body = await request.json()
        srv.bodies.append(body)
        if srv.fail_next > 0:
            srv.fail_next -= 1
            return web.json_response({"message": "etcd is sad"}, status=500)
        status, out = answer(body)
        return web.json_response(out, status=status)

    app = web.Application()
    app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", handle)
    app.router.add_post("/apis/authorization.k8s.io/v1/subjectaccessreviews", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=sctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    srv = ReviewServer(url=f"https://127.0.0.1:{port}", ca=ca, client=client_pair)
    state["srv"] = srv
    try:
        yield srv
    finally:
        await runner.cleanup()

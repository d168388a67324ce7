"""A Docker registry token server (the distribution "token" auth spec) for tests: basic-auth or
refresh-token clients get a JWT (ES256, x5c chain) that a real docker-registry configured with
``auth.token`` verifies against our test CA. Runs in the test's event loop on 127.0.0.1:0."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

__all__ = ["TokenServer"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    cert_file: str
    key_file: str
    user: str = "tokenuser"
    password: str = "token-pw"
    refresh_token: str = field(default_factory=lambda: secrets.token_hex(16))
    service: str = "test-registry"
    issuer: str = "test-issuer"
    requests: list[str] = field(default_factory=list)  # "basic" / "refresh" / "anonymous"
    url: str = ""
    _runner: web.AppRunner | None = None

    def _jwt(self, scope: str) -> str:
        key = serialization.load_pem_private_key(Path(self.key_file).read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        cert = x509.load_pem_x509_certificate(Path(self.cert_file).read_bytes())
        der = cert.public_bytes(serialization.Encoding.DER)
        header = {"alg": "ES256", "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
        access = []
        for item in scope.split(" ") if scope else []:
            kind, name, actions = item.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": self.user,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    async def _token(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            form = await request.post()
            if (
                form.get("grant_type") != "refresh_token"
                or form.get("refresh_token") != self.refresh_token
            ):
                return web.json_response({"error": "invalid_grant"}, status=401)
            self.requests.append("refresh")
            return web.json_response({"access_token": self._jwt(str(form.get("scope", "")))})
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        auth = request.headers.get("Authorization", "")
        if not auth:
            self.requests.append("anonymous")
            return web.json_response({"errors": [{"code": "UNAUTHORIZED"}]}, status=401)
        if auth != expected:
            self.requests.append("bad")
            return web.json_response({"errors": [{"code": "UNAUTHORIZED"}]}, status=401)
        self.requests.append("basic")
        return web.json_response({"token": self._jwt(request.query.get("scope", ""))})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/token", self._token)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/token"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

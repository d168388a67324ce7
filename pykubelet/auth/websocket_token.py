"""Bearer tokens carried in a WebSocket subprotocol (reference §2.2).

Browsers cannot set ``Authorization`` on a WebSocket, so clients offer the subprotocol
``base64url.bearer.authorization.k8s.io.<base64url-no-padding(token)>`` beside the real one.
On success the token entry is removed from ``Sec-WebSocket-Protocol`` (``AuthResult.
rewritten_headers``) so the handler negotiates only the real subprotocols and never echoes the
token. Outcomes follow upstream: two token entries, bad encoding, or a token with no other
subprotocol are errors (401); an unknown token is 401 ("invalid bearer token").
"""

from __future__ import annotations

import base64
import binascii

from pykubelet.auth.bearer import INVALID_TOKEN, TokenAuthenticator
from pykubelet.auth.errors import WebhookError
from pykubelet.auth.types import AuthResult, RequestInfo

__all__ = ["PROTOCOL_PREFIX", "WebSocketTokenAuthenticator", "encode_token_protocol"]

PROTOCOL_PREFIX = "base64url.bearer.authorization.k8s.io."
_HEADER = "sec-websocket-protocol"


def encode_token_protocol(token: str) -> str:
    """The subprotocol entry a client offers to carry ``token``."""
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    return PROTOCOL_PREFIX + encoded


def _is_websocket(req: RequestInfo) -> bool:
    connection = {p.strip().lower() for p in req.headers.get("connection", "").split(",")}
    return "upgrade" in connection and req.headers.get("upgrade", "").strip().lower() == "websocket"


def _decode(encoded: str) -> str:
    if "=" in encoded:
        raise ValueError("padding is not allowed")
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
    return raw.decode("utf-8")


class WebSocketTokenAuthenticator:
    """The WebSocket-subprotocol step of the authentication chain."""

    def __init__(self, tokens: TokenAuthenticator) -> None:
        self._tokens = tokens

    async def authenticate(self, req: RequestInfo) -> AuthResult | None:
        if not _is_websocket(req):
            return None
        token = ""
        seen = False
        others: list[str] = []
        for entry in req.headers.get(_HEADER, "").split(","):
            entry = entry.strip()
            if not entry.startswith(PROTOCOL_PREFIX):
                if entry:
                    others.append(entry)
                continue
            if seen:
                return AuthResult(error="multiple base64.bearer.authorization tokens specified")
            seen = True
            try:
                token = _decode(entry[len(PROTOCOL_PREFIX) :])
            except (ValueError, binascii.Error):
                return AuthResult(error="invalid base64.bearer.authorization token encoding")
        if token and not others:
            return AuthResult(error="missing additional subprotocol")
        if not token:
            return None
        try:
            user = await self._tokens.authenticate_token(token)
        except WebhookError as exc:
            return AuthResult(error=f"token review failed: {exc}")
        if user is None:
            return AuthResult(error=INVALID_TOKEN)
        return AuthResult(user=user, rewritten_headers=((_HEADER, ", ".join(others)),))

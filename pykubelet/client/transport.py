"""One aiohttp session to one kubelet: plain requests, streamed bodies, WebSocket upgrades.

aiohttp's exceptions stop here: they become ``ConnectionFailed``; error statuses become
``ServerError`` only where a caller asks (``check=True``), since ``probe`` wants them raw.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

import aiohttp

from pykubelet.client.config import Connection
from pykubelet.client.errors import ConnectionFailed, ServerError, UpgradeRefused

__all__ = ["KubeletSession", "Reply"]

Query = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    status: int
    content_type: str | None
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class KubeletSession:
    """``async with KubeletSession(conn) as s: await s.get("/pods")``."""

    def __init__(self, conn: Connection, *, authenticate: bool = True) -> None:
        self.conn = conn
        self._ssl: ssl.SSLContext | bool = conn.ssl_context() or False
        self._headers = (
            {"Authorization": f"Bearer {conn.token}"} if conn.token and authenticate else {}
        )
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeletSession:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use KubeletSession in 'async with'"
        return self._session

    def url(self, path: str) -> str:
        return self.conn.server + path

    async def request(
        self,
        method: str,
        path: str,
        query: Query = (),
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Reply:
        try:
            async with self.session.request(
                method,
                self.url(path),
                params=list(query),
                data=data,
                headers={**self._headers, **(headers or {})},
                ssl=self._ssl,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                reply = Reply(
                    status=resp.status, content_type=resp.headers.get("Content-Type"), body=body
                )
        except aiohttp.ClientError as e:
            raise ConnectionFailed(_describe(self.conn.server, e)) from None
        except OSError as e:
            raise ConnectionFailed(f"{self.conn.server}: {e}") from None
        if check and reply.status >= 400:
            raise ServerError(reply.status, reply.text)
        return reply

    async def get(self, path: str, query: Query = (), *, check: bool = True) -> Reply:
        return await self.request("GET", path, query, check=check)

    async def stream(self, path: str, query: Query = ()) -> AsyncIterator[bytes]:
        """The body of a GET as it arrives (``logs -f``); an error status raises first."""
        try:
            async with self.session.get(
                self.url(path), params=list(query), headers=self._headers, ssl=self._ssl
            ) as resp:
                if resp.status >= 400:
                    raise ServerError(resp.status, (await resp.read()).decode("utf-8", "replace"))
                async for chunk in resp.content.iter_any():
                    yield chunk
        except aiohttp.ClientError as e:
            raise ConnectionFailed(_describe(self.conn.server, e)) from None

    async def websocket(
        self, path: str, query: Query, protocols: Sequence[str]
    ) -> aiohttp.ClientWebSocketResponse:
        """An upgraded WebSocket; a refused upgrade raises ``ServerError`` with the body."""
        try:
            return await self.session.ws_connect(
                self.url(path),
                params=list(query),
                protocols=tuple(protocols),
                headers=self._headers,
                ssl=self._ssl,
                max_msg_size=0,
                autoping=True,
            )
        except aiohttp.WSServerHandshakeError as e:
            refused = e.status
        except aiohttp.ClientError as e:
            raise ConnectionFailed(_describe(self.conn.server, e)) from None
        # aiohttp drops the refusal's body; ask again without the upgrade for the text (a
        # streaming path never runs anything without one: it answers the auth error or 500)
        plain = await self.request("GET", path, query, check=False)
        if plain.status in (401, 403, 404):
            raise ServerError(plain.status, plain.text)
        raise UpgradeRefused(refused, f"the kubelet refused the WebSocket upgrade ({refused})")


def _describe(server: str, e: aiohttp.ClientError) -> str:
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        return f"unable to connect to {server}: x509: {e.certificate_error}"
    if isinstance(e, aiohttp.ClientConnectorError):
        return f"unable to connect to {server}: {e.os_error.strerror or e.os_error}"
    return f"{server}: {e}"

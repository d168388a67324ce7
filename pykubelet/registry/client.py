"""The OCI distribution API over aiohttp: manifests and blobs, auth challenges, TLS.

Registries are HTTPS; a registry on a loopback address (``localhost``, ``127.0.0.1``, ``::1``)
that does not speak TLS is tried again over plain HTTP, as containerd and docker do for
localhost. ``ca_file`` adds trusted CAs to the system's. Every blob is checked against its
digest (and size) while it streams; nothing unverified reaches the image store. aiohttp and
socket errors become ``ImagePullError`` here and nowhere else.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import ssl
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from pykubelet.registry.auth import (
    basic_header,
    parse_challenge,
    token_request,
)
from pykubelet.registry.manifests import ACCEPT
from pykubelet.registry.refs import ImageRef
from pykubelet.runtime.errors import ImageNotFound, ImagePullError
from pykubelet.runtime.types import RegistryAuth

__all__ = ["RegistryClient"]

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_CHUNK = 1 << 20


def _is_loopback(host: str) -> bool:
    if host.startswith("["):
        name = host[1 : host.index("]")]
    else:
        name = host.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _registry_error(status: int, body: bytes) -> str:
    try:
        errors = json.loads(body).get("errors") or []
        text = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors)
    except (ValueError, AttributeError):
        text = body[:200].decode(errors="replace").strip()
    return f"HTTP {status}" + (f" ({text})" if text else "")


class RegistryClient:
    """One per pull (``async with``): its connections and tokens live as long as the pull."""

    def __init__(self, *, ca_file: str = "", stall_timeout_s: float = 60.0) -> None:
        self._ca_file = ca_file
        # no deadline on a whole pull (the Go kubelet sets none; layers can be gigabytes), but
        # a connection that makes no progress for this long fails it, as containerd's
        # image_pull_progress_timeout does
        self._stall_timeout_s = stall_timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._plain_http: set[str] = set()  # loopback hosts that turned out not to speak TLS
        # (host, scope, credentials) -> (Authorization value, monotonic expiry)
        self._tokens: dict[tuple[str, str, RegistryAuth | None], tuple[str, float]] = {}

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            ctx = ssl.create_default_context()
            if self._ca_file:
                try:
                    ctx.load_verify_locations(cafile=self._ca_file)
                except (OSError, ssl.SSLError) as e:
                    raise ImagePullError(f"registry CA file {self._ca_file}: {e}") from e
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ctx, limit=16),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=30, sock_read=self._stall_timeout_s
                ),
            )
        return self._session

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ API

    async def manifest(
        self, ref: ImageRef, reference: str, auth: RegistryAuth | None
    ) -> tuple[bytes, str]:
        """The manifest (or index) bytes and their Content-Type."""
        path = f"/v2/{ref.repository}/manifests/{reference}"
        async with self._get(ref, path, auth, accept=ACCEPT) as resp:
            if resp.status == 404:
                raise ImageNotFound(f"{ref.name}:{reference}: not found in the registry")
            body = await self._read_limited(resp, MAX_MANIFEST_BYTES)
            return body, resp.headers.get("Content-Type", "")

    async def blob_bytes(
        self, ref: ImageRef, digest: str, auth: RegistryAuth | None, *, size_bytes: int = 0
    ) -> bytes:
        """A small blob (an image config), verified."""
        async with self._get(ref, f"/v2/{ref.repository}/blobs/{digest}", auth) as resp:
            self._blob_found(resp, ref, digest)
            body = await self._read_limited(resp, MAX_MANIFEST_BYTES)
        _verify(digest, hashlib.sha256(body).hexdigest(), len(body), size_bytes)
        return body

    async def blob_to_file(
        self,
        ref: ImageRef,
        digest: str,
        auth: RegistryAuth | None,
        dest: Path,
        *,
        size_bytes: int = 0,
    ) -> None:
        """Stream a layer to ``dest``, hashing as it comes; a mismatch removes the file. A
        gzip'd blob is stored decompressed (the digest is of what the registry sent), so it is
        inflated once, while it downloads, instead of on every pass over the tar."""
        async with self._get(ref, f"/v2/{ref.repository}/blobs/{digest}", auth) as resp:
            self._blob_found(resp, ref, digest)
            sink = await asyncio.to_thread(_LayerSink, dest)
            try:
                buf = bytearray()
                try:
                    async for chunk in resp.content.iter_chunked(_CHUNK):
                        buf += chunk
                        if len(buf) >= _CHUNK:  # hash, inflate and write off the event loop
                            await asyncio.to_thread(sink.write, bytes(buf))
                            buf.clear()
                except (aiohttp.ClientError, OSError, TimeoutError) as e:
                    raise ImagePullError(f"{ref.name}: reading blob {digest}: {e!r}") from e
                await asyncio.to_thread(sink.write, bytes(buf))
            finally:
                await asyncio.to_thread(sink.close)
        try:
            _verify(digest, sink.sha256.hexdigest(), sink.size, size_bytes)
            if sink.problem:
                raise ImagePullError(f"{ref.name}: blob {digest}: {sink.problem}")
        except ImagePullError:
            await asyncio.to_thread(dest.unlink, missing_ok=True)
            raise

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _blob_found(resp: aiohttp.ClientResponse, ref: ImageRef, digest: str) -> None:
        if resp.status == 404:
            raise ImagePullError(f"{ref.name}: blob {digest} not found in the registry")

    async def _read_limited(self, resp: aiohttp.ClientResponse, limit: int) -> bytes:
        try:
            body = await resp.content.read(limit + 1)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise ImagePullError(f"reading {resp.url}: {e!r}") from e
        if len(body) > limit:
            raise ImagePullError(f"{resp.url}: larger than {limit} bytes")
        return body

    def _scheme(self, host: str) -> str:
        return "http" if host in self._plain_http else "https"

    @asynccontextmanager
    async def _get(
        self, ref: ImageRef, path: str, auth: RegistryAuth | None, *, accept: str = ""
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET with the auth dance: answer one 401 challenge, then fail on another. Yields
        a response with status 200 or 404; any other status raises ``ImagePullError``."""
        host = ref.api_host
        scope = f"repository:{ref.repository}:pull"
        key = (host, scope, auth)
        headers = {"Accept": accept} if accept else {}
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            headers["Authorization"] = cached[0]
        for attempt in range(2):
            resp = await self._send(host, path, headers)
            try:
                if resp.status == 401 and attempt == 0:
                    challenge = resp.headers.get("WWW-Authenticate", "")
                    headers["Authorization"] = await self._answer(challenge, scope, auth, key)
                    continue
                if resp.status not in (200, 404):
                    body = await resp.content.read(4096)
                    what = "unauthorized" if resp.status in (401, 403) else "failed"
                    raise ImagePullError(
                        f"{ref.name}: {what}: {_registry_error(resp.status, body)}"
                    )
                yield resp
                return
            finally:
                resp.release()
        raise AssertionError("unreachable")

    async def _send(self, host: str, path: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        url = f"{self._scheme(host)}://{host}{path}"
        try:
            return await self._http().get(url, headers=headers)
        except aiohttp.ClientConnectorCertificateError as e:
            raise ImagePullError(
                f"{host}: TLS certificate not trusted: {e.certificate_error}"
            ) from e
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            if url.startswith("https:") and _is_loopback(host):
                self._plain_http.add(host)  # a local registry without TLS
                return await self._send(host, path, headers)
            raise ImagePullError(f"{host}: {e!r}") from e

    async def _answer(
        self,
        header: str,
        scope: str,
        auth: RegistryAuth | None,
        key: tuple[str, str, RegistryAuth | None],
    ) -> str:
        challenge = parse_challenge(header)
        if challenge.scheme == "basic":
            value = basic_header(auth)
            if not value:
                raise ImagePullError(
                    "unauthorized: the registry asks for credentials and none were found"
                )
            return value
        if challenge.scheme != "bearer":
            raise ImagePullError(f"registry: unsupported auth challenge {header!r}")
        req = token_request(challenge, scope, auth)
        headers = {"Authorization": req.authorization} if req.authorization else {}
        try:
            if req.form is not None:
                resp = await self._http().post(req.url, data=req.form, headers=headers)
            else:
                resp = await self._http().get(req.url, params=req.query, headers=headers)
            async with resp:
                body = await resp.content.read(1 << 20)
                if resp.status != 200:
                    why = _registry_error(resp.status, body)
                    raise ImagePullError(f"unauthorized: token server {req.url}: {why}")
                doc = json.loads(body)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
            raise ImagePullError(f"token server {req.url}: {e!r}") from e
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise ImagePullError(f"token server {req.url}: no token in its answer")
        expires = float(doc.get("expires_in") or 60)
        value = f"Bearer {token}"
        self._tokens[key] = (value, time.monotonic() + max(0.0, expires - 5))
        return value


class _LayerSink:
    """Hashes what arrives and writes it to a file, inflated when it is gzip (every member).
    Bad gzip is noted in ``problem``, not raised: the digest check speaks first."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "wb")
        self._z: zlib._Decompress | None = None
        self._started = False
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.problem = ""

    def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)
        if self.problem:
            return
        if not self._started and data:
            self._started = True
            if data[:2] == b"\x1f\x8b":
                self._z = zlib.decompressobj(wbits=31)
        try:
            while self._z is not None and data:
                self._f.write(self._z.decompress(data))
                if not self._z.eof:
                    return
                data = self._z.unused_data  # another gzip member may follow
                if data:
                    self._z = zlib.decompressobj(wbits=31)
            self._f.write(data)
        except zlib.error as e:
            self.problem = f"not valid gzip: {e}"

    def close(self) -> None:
        self._f.close()
        if self._z is not None and not self._z.eof and not self.problem:
            self.problem = "the gzip stream ends early"


def _verify(digest: str, got_hex: str, got_size: int, want_size: int) -> None:
    algo, _, want_hex = digest.partition(":")
    if algo != "sha256":
        raise ImagePullError(f"digest {digest!r}: only sha256 is supported")
    if got_hex != want_hex:
        raise ImagePullError(f"content of {digest} has digest sha256:{got_hex}: refused")
    if want_size and got_size != want_size:
        raise ImagePullError(
            f"content of {digest} is {got_size} bytes, the manifest says {want_size}"
        )

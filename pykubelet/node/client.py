"""The API-server client: JSON over kubernetes_asyncio's transport, behind token buckets.

kubernetes_asyncio does what we must not write by hand (kubeconfig loading with inline or file
certificates, exec and token auth, TLS, an aiohttp connection pool). Its generated models are
not used: objects stay plain JSON dicts, so nothing a 1.20 API server sends is dropped or
re-validated, and a watch event costs one ``json.loads``. The kubelet's three clients
(reference §0.1) are three ``KubeApi`` views over one connection pool: the main one limited by
``kubeAPIQPS``/``kubeAPIBurst``, events by ``eventRecordQPS``/``eventBurst``, heartbeats
(node status, Lease) unlimited.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import json
import logging
from typing import Any

from pykubelet.core.clock import Clock
from pykubelet.core.errors import InvalidInput, PykubeletError

__all__ = ["ApiError", "KubeApi", "RateLimiter", "connect"]

log = logging.getLogger(__name__)

JSON = "application/json"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


class ApiError(PykubeletError):
    """A non-2xx answer (``status``) or a transport failure (``status`` 0)."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.body = body or {}

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", ""))


class RateLimiter:
    """client-go's token bucket (``flowcontrol.NewTokenBucketRateLimiter``): ``burst`` tokens,
    refilled at ``qps`` per second; ``wait()`` takes one, sleeping until it is there. A ``qps``
    of 0 means no limit (upstream's ``eventRecordQPS: 0``)."""

    def __init__(self, qps: float, burst: int, clock: Clock) -> None:
        self._qps = qps
        self._burst = max(1, burst)
        self._clock = clock
        self._tokens = float(self._burst)
        self._at = clock.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._qps)
        self._at = now

    async def wait(self) -> None:
        if self._qps <= 0:
            return
        async with self._lock:  # first come, first served
            self._refill()
            if self._tokens < 1:
                await self._clock.sleep((1 - self._tokens) / self._qps)
                self._refill()
            self._tokens -= 1


class KubeApi:
    """JSON requests to the API server; counts requests by verb (for the benchmark)."""

    def __init__(
        self,
        api_client: Any,
        *,
        limiter: RateLimiter | None = None,
        counts: collections.Counter[str] | None = None,
    ) -> None:
        self._api = api_client
        self._limiter = limiter
        self.counts: collections.Counter[str] = (
            counts if counts is not None else collections.Counter()
        )

    def view(self, limiter: RateLimiter | None) -> KubeApi:
        """Another client on the same connection pool with its own rate limit."""
        return KubeApi(self._api, limiter=limiter, counts=self.counts)

    def own_pool(self) -> KubeApi:
        """Another client with the same credentials and rate limit on a connection pool of its
        own, without a connection limit: for long watches, each of which holds a connection
        (HTTP/1.1), so they can never take the connections other requests wait for. Close it."""
        configuration = copy.deepcopy(self._api.configuration)
        configuration.connection_pool_maxsize = 0  # aiohttp: no limit
        return KubeApi(type(self._api)(configuration), limiter=self._limiter, counts=self.counts)

    async def close(self) -> None:
        await self._api.close()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None,
        body: Any,
        content_type: str,
        request_timeout_s: float | None,
    ) -> Any:
        if self._limiter is not None:
            await self._limiter.wait()
        self.counts[method] += 1
        params = [
            (k, str(v).lower() if isinstance(v, bool) else v) for k, v in (query or {}).items()
        ]
        try:
            return await self._api.call_api(
                path,
                method,
                query_params=params,
                header_params={"Content-Type": content_type, "Accept": JSON},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=request_timeout_s,
            )
        except (OSError, TimeoutError) as e:  # aiohttp.ClientError is an OSError subclass
            raise ApiError(0, f"{method} {path}: {e or type(e).__name__}") from e
        except Exception as e:
            if type(e).__module__.startswith("aiohttp"):
                raise ApiError(0, f"{method} {path}: {e or type(e).__name__}") from e
            raise

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = JSON,
        request_timeout_s: float | None = 30.0,
    ) -> dict[str, Any]:
        """One request; the decoded JSON answer, or ``ApiError`` with the API's Status."""
        resp = await self._send(
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            request_timeout_s=request_timeout_s,
        )
        try:
            raw = await resp.read()
        except (OSError, TimeoutError) as e:
            raise ApiError(0, f"{method} {path}: {e or type(e).__name__}") from e
        finally:
            resp.release()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"message": raw[:200].decode(errors="replace")}
        if not 200 <= resp.status <= 299:
            message = data.get("message", "") if isinstance(data, dict) else ""
            raise ApiError(resp.status, f"{method} {path}: {message}", data)
        return data if isinstance(data, dict) else {}

    async def stream(
        self, path: str, query: dict[str, Any], *, request_timeout_s: float | None
    ) -> Any:
        """A streaming GET (watch): the open aiohttp response, status checked; the caller reads
        lines from ``.content`` and releases it."""
        resp = await self._send(
            "GET",
            path,
            query=query,
            body=None,
            content_type=JSON,
            request_timeout_s=request_timeout_s,
        )
        if resp.status != 200:
            try:
                raw = await resp.read()
            finally:
                resp.release()
            try:
                data = json.loads(raw)
            except ValueError:
                data = {}
            raise ApiError(resp.status, f"GET {path}: {data.get('message', '')}", data)
        return resp


async def connect(kubeconfig: str, *, limiter: RateLimiter | None) -> KubeApi:
    """Load ``kubeconfig`` (``InvalidInput`` naming the file if it cannot be used)."""
    try:
        from kubernetes_asyncio import client, config
    except ImportError:
        raise InvalidInput(
            "node mode needs the kubernetes_asyncio package: pip install 'pykubelet[node]'",
            field="kubeconfig",
        ) from None
    configuration = client.Configuration()
    try:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except Exception as e:  # the loader raises ConfigException, OSError, yaml errors...
        raise InvalidInput(f"cannot use {kubeconfig}: {e}", field="kubeconfig") from None
    return KubeApi(client.ApiClient(configuration), limiter=limiter)

"""Unauthenticated resource exhaustion (issue #14, holes 6-9) against a real server: real TLS
on 127.0.0.1, raw sockets playing the attacker, an admin with a client certificate."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from pykubelet.auth.ratelimit import AuthFailureLimiter, LimiterSettings
from pykubelet.server import KubeletServers, ServerBackends
from pykubelet.server.listener import GuardLimits
from pykubelet.server.metrics import HttpMetricsObserver, metrics_routes
from pykubelet.stats.agent_metrics import AgentMetrics
from tests.server.harness import (
    Pki,
    StaticPods,
    TinyRuntime,
    fetch,
    running,
    settings_for,
    wait_until,
)

LIMITS = GuardLimits(
    max_connections=40,
    max_per_address=8,
    handshake_timeout_s=0.5,
    header_timeout_s=1.0,
    keepalive_timeout_s=1.0,
)


def _backends(**kw: object) -> ServerBackends:
    return ServerBackends(
        pods=StaticPods(),
        runtime=TinyRuntime(),
        connection_limits=LIMITS,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def servers(pki: Pki) -> AsyncIterator[KubeletServers]:
    async with running(settings_for(pki), _backends()) as s:
        yield s


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the server hangs up (EOF or reset) within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
        return True
    except (ConnectionError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


async def _tcp(
    port: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def test_half_open_tls_is_closed_after_the_handshake_deadline(
    servers: KubeletServers,
) -> None:
    assert servers.full_port is not None
    reader, writer = await _tcp(servers.full_port)  # no ClientHello, ever
    try:
        assert await _closed_within(reader, 5.0)
    finally:
        writer.close()


async def test_slow_headers_are_cut_off_at_the_header_deadline(
    servers: KubeletServers, pki: Pki
) -> None:
    assert servers.full_port is not None
    ctx = pki.client_context(None)
    reader, writer = await asyncio.open_connection("127.0.0.1", servers.full_port, ssl=ctx)
    try:
        writer.write(b"GET /pods HTTP/1.1\r\nHost: x\r\n")  # slowloris: never finishes
        await writer.drain()

        async def drip() -> None:
            for _ in range(40):
                writer.write(b"X-A: b\r\n")
                await writer.drain()
                await asyncio.sleep(0.1)

        dripping = asyncio.ensure_future(drip())
        try:
            assert await _closed_within(reader, 3.0)
        finally:
            dripping.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, ssl.SSLError):
                await dripping
    finally:
        writer.close()
    assert servers.guard.timed_out >= 1


async def test_idle_keep_alive_connections_close(servers: KubeletServers, pki: Pki) -> None:
    assert servers.full_port is not None
    ctx = pki.client_context(pki.admin)
    reader, writer = await asyncio.open_connection("127.0.0.1", servers.full_port, ssl=ctx)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert await _closed_within(reader, 5.0)  # LIMITS.keepalive_timeout_s = 1 s
    finally:
        writer.close()


async def test_per_address_and_total_caps_keep_the_admin_served(
    servers: KubeletServers, pki: Pki
) -> None:
    assert servers.full_port is not None
    port = servers.full_port
    held: list[asyncio.StreamWriter] = []
    try:
        for _ in range(LIMITS.max_per_address):
            _, w = await _tcp(port, "127.0.0.3")
            held.append(w)
        await asyncio.sleep(0.05)
        extra_r, extra_w = await _tcp(port, "127.0.0.3")
        held.append(extra_w)
        assert await _closed_within(extra_r, 0.4), "the 9th connection from one address was kept"
        # other addresses fill the rest of the total cap ...
        for i in range(4):
            for _ in range(LIMITS.max_per_address):
                _, w = await _tcp(port, f"127.0.0.{10 + i}")
                held.append(w)
        await asyncio.sleep(0.05)
        assert servers.guard.open == LIMITS.max_connections
        over_r, over_w = await _tcp(port, "127.0.0.20")
        held.append(over_w)
        assert await _closed_within(over_r, 0.4)
        assert servers.guard.refused >= 2
    finally:
        for w in held:
            w.close()
    # ... and once they are gone (or timed out), the admin is served again
    await wait_until(lambda: servers.guard.open == 0, 5.0)
    r = await fetch(port, "/pods", ctx=pki.client_context(pki.admin))
    assert r.status == 200


def test_nofile_limit_is_raised_at_start() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 256:
        pytest.skip(f"hard RLIMIT_NOFILE is {hard}: nothing to raise")

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    code = (
        "import resource; from pykubelet.server.listener import raise_nofile_limit;"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], raise_nofile_limit(),"
        " resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], preexec_fn=lower, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["256", str(hard), str(hard)]


async def test_metrics_survive_hostile_paths(pki: Pki) -> None:
    """Hole 7: ``GET /%ff`` made /metrics answer 500; random paths grew it without bound."""
    metrics = AgentMetrics(node_name="node-a")
    backends = _backends(
        extra_routes=metrics_routes(_Exposition(metrics)), observer=HttpMetricsObserver(metrics)
    )
    async with running(settings_for(pki), backends) as s:
        assert s.full_port is not None
        anonymous = pki.client_context(None)
        for target in ("/%ff", "/%ff/x", "/a%E2%80%A8b", *(f"/rnd{i}" for i in range(200))):
            await fetch(s.full_port, target, ctx=anonymous)
        r = await fetch(s.full_port, "/metrics", ctx=pki.client_context(pki.admin))
    assert r.status == 200, r.body[:300]
    body = r.body.decode()
    lines = [ln for ln in body.splitlines() if ln.startswith("kubelet_http_requests_total")]
    assert any('path="other"' in ln for ln in lines), lines
    assert not any("rnd" in ln for ln in lines)
    assert len(body) < 20_000


class _Exposition:
    def __init__(self, metrics: AgentMetrics) -> None:
        self._m = metrics

    def agent_metrics(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self._m.registry)

    def resource_metrics(self) -> bytes:
        return b""

    def cadvisor_metrics(self) -> bytes:
        return b""

    def probe_metrics(self) -> bytes:
        return b""


async def test_self_signed_client_cert_does_not_bypass_the_failed_auth_limiter(
    pki: Pki,
) -> None:
    """Hole 8: any client certificate, even one no CA signed, skipped the limiter."""
    limiter = AuthFailureLimiter(LimiterSettings(burst=3, rate=0.01))
    async with running(settings_for(pki), _backends(auth_limiter=limiter)) as s:
        assert s.full_port is not None
        rogue = pki.client_context(pki.rogue)
        statuses = [(await fetch(s.full_port, "/pods", ctx=rogue)).status for _ in range(6)]
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3:] == [429, 429, 429]
        # a verified admin from the same address is never limited
        ok = await fetch(s.full_port, "/pods", ctx=pki.client_context(pki.admin))
        assert ok.status == 200


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/./%5Cevil.example", "/%5Cevil.example"),
        ("/pods/../%3Cscript%3Ealert(1)%3C/script%3E", "/%3Cscript%3Ealert%281%29%3C/script%3E"),
        ("//evil.example/..", "/"),
        ("/stats?x=%22%3E%3Cb%3E", "/stats/?x=%22%3E%3Cb%3E"),
    ],
)
async def test_redirects_are_escaped_as_go_does(
    servers: KubeletServers, pki: Pki, target: str, location: str
) -> None:
    """Hole 9: the 301 reflected the decoded path unescaped (``Location: /\\evil.example``)."""
    assert servers.full_port is not None
    r = await fetch(servers.full_port, target, ctx=pki.client_context(None))
    assert r.status == 301
    assert r.headers["location"] == location
    assert b"<script" not in r.body.lower() and b"<b>" not in r.body


@pytest.mark.parametrize(
    "target", ["/pods/%ff", "/stats/%ff%fe", "/containerLogs/ns/%ff/c", "/logs/%80"]
)
async def test_bad_bytes_are_400_not_500(servers: KubeletServers, pki: Pki, target: str) -> None:
    assert servers.full_port is not None
    r = await fetch(servers.full_port, target, ctx=pki.client_context(pki.admin))
    assert r.status == 400, (r.status, r.body[:200])
    assert b"Traceback" not in r.body


def test_environment_has_several_loopback_addresses() -> None:
    """The cap tests bind 127.0.0.x sources: Linux routes all of 127/8 to lo."""
    assert os.uname().sysname == "Linux"

"""Security hot paths: policy evaluation, token lookup, webhook cache, audit, recording, limiter.

Run: .venv/bin/python bench/bench_security.py   (loopback only, well under a minute)
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pykubelet.auth.policy import PolicyAuthorizer
from pykubelet.auth.ratelimit import AuthFailureLimiter
from pykubelet.auth.tokenfile import StaticTokenFile
from pykubelet.auth.tokenreview import TokenReviewAuthenticator
from pykubelet.auth.types import Attributes, UserInfo
from pykubelet.auth.webhook_client import HTTPSReviewPoster
from pykubelet.core.clock import SystemClock
from pykubelet.security.recording import AsciicastRecorder
from pykubelet.server.audit import AuditLog, AuditRecord, audit_event

ROWS: list[tuple[str, float, str]] = []


def timed(name: str, n: int, fn: Callable[[], object], unit: str = "ops/s") -> None:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    ROWS.append((name, n / (time.perf_counter() - t0), unit))


async def atimed(name: str, n: int, fn: Callable[[], Awaitable[object]]) -> None:
    t0 = time.perf_counter()
    for _ in range(n):
        await fn()
    ROWS.append((name, n / (time.perf_counter() - t0), "ops/s"))


async def webhook_rows(tmp: Path) -> None:
    from tests.auth.webhook_server import review_server

    def answer(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, {"status": {"authenticated": True, "user": {"username": "u"}}}

    async with review_server(tmp, answer) as srv:
        poster = HTTPSReviewPoster(srv.url, ssl_context=srv.client_context())
        auth = TokenReviewAuthenticator(poster)
        counter = iter(range(10**9))
        await atimed(
            "TokenReview miss (mTLS conn each)",
            200,
            lambda: auth.authenticate_token(f"t{next(counter)}"),
        )
        await auth.authenticate_token("hot")
        await atimed("TokenReview cache hit", 50_000, lambda: auth.authenticate_token("hot"))


def main() -> None:
    admin = UserInfo(name="root", groups=("system:masters", "system:authenticated"))
    nobody = UserInfo(name="eve", groups=("system:authenticated",))
    policy = PolicyAuthorizer.default()
    allow = Attributes(user=admin, verb="get", name="n", subresource="pods", path="/pods")
    deny = Attributes(user=nobody, verb="get", name="n", subresource="pods", path="/pods")
    timed("policy evaluate (allow)", 200_000, lambda: policy.evaluate(allow))
    timed("policy evaluate (no opinion)", 200_000, lambda: policy.evaluate(deny))

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        tf_path = tmp / "tokens.csv"
        tf_path.write_text("".join(f"token-{i:05d},user{i},{i},grp\n" for i in range(10_000)))
        t0 = time.perf_counter()
        tf = StaticTokenFile(tf_path)
        ROWS.append(("token file load (10k tokens)", (time.perf_counter() - t0) * 1e3, "ms"))
        loop = asyncio.new_event_loop()
        timed(
            "static token lookup (10k, incl. stat)",
            50_000,
            lambda: loop.run_until_complete(tf.authenticate_token("token-04242")),
        )
        loop.close()

        rec = AuditRecord(
            audit_id="0b5e1a56-7a33-4a0e-9d59-1a2b3c4d5e6f",
            request_uri="/pods",
            verb="get",
            source_ips=["127.0.0.1"],
            user_agent="bench",
            node_name="n",
            subresource="pods",
            status_code=200,
            received=time.time(),
            completed=time.time(),
            user=admin,
            decision="allow",
            reason="RBAC",
        )
        timed("audit_event build", 100_000, lambda: audit_event(rec))
        log = AuditLog(tmp / "audit.log", max_bytes=50 << 20, queue_size=200_000)
        log.start()
        ev = audit_event(rec)
        n = 100_000
        t0 = time.perf_counter()
        for _ in range(n):
            log.emit(ev)
        emit_dt = time.perf_counter() - t0
        log.close(timeout=120)
        total_dt = time.perf_counter() - t0
        ROWS.append(("audit emit (caller side)", n / emit_dt, "events/s"))
        ROWS.append(("audit written to disk", log.written / total_dt, "events/s"))
        ROWS.append(("audit dropped (of 100k, queue 200k)", float(log.dropped), "events"))

        sink = io.StringIO()
        r = AsciicastRecorder(sink, width=80, height=24, clock=SystemClock())
        chunk = b"x" * 4096
        t0 = time.perf_counter()
        for _ in range(20_000):
            r.output(chunk)
        mbps = 20_000 * 4096 / (time.perf_counter() - t0) / 1e6
        ROWS.append(("asciicast output (4 KiB chunks)", mbps, "MB/s"))

        lim = AuthFailureLimiter()
        ips = [f"10.0.{i // 256}.{i % 256}" for i in range(5000)]
        it = iter(range(10**9))

        def limiter_step() -> None:
            i = next(it)
            ip = ips[i % 5000]
            if lim.retry_after(ip, i * 0.001) == 0:
                lim.record_failure(ip, i * 0.001)

        timed("limiter check+record (5k addresses)", 200_000, limiter_step)
        asyncio.run(webhook_rows(tmp / "wh"))

    print(f"{'measurement':<40} {'value':>14}  unit")
    print("-" * 64)
    for name, value, unit in ROWS:
        print(f"{name:<40} {value:>14,.1f}  {unit}")


if __name__ == "__main__":
    main()

"""Benchmark the kubelet API: /pods (110 pods) and /healthz over TLS with a client certificate
at 1, 16 and 64 concurrent clients, and container-log following (throughput and latency).

``/pods`` uses a lister that builds fresh pod views per call, as the pod manager does;
``/pods+gen`` the same lister offering ``generation()`` (``VersionedPodLister``).

The server runs in this process; every load generator runs in a separate process (this script
with ``--client``) so it does not share the server's core. Loopback only; bounded (< 2 min).

    .venv/bin/python bench/bench_api.py [--duration 3]

``--front``: the front-door figures only: /healthz and /pods (110 pods) with 16 TLS keep-alive
connections driven by ApacheBench (``ab``, C, so the client is not the bottleneck; a bearer
token, as ``ab`` cannot present a client certificate). ``PYKUBELET_TREE=/path/to/checkout``
measures another tree with the same script (the before/after table in docs/performance.md).

``--front --upstream``: the upstream Go kubelet v1.20.2 side by side in the same run, on a
private containerd with 110 static pods (``cri_node.py``; needs root and the binaries of
``scripts/upstream-k8s/setup.sh``, else it says why and measures pykubelet alone). Per endpoint
the upstream kubelet first, then pykubelet (the upstream kubelet paused meanwhile), with the same
``ab`` settings; upstream runs as ``start.sh standalone`` configures it (anonymous
authentication, ``AlwaysAllow``, no audit log), pykubelet as above (bearer token, ``Policy``,
the audit log and metrics). The upstream kubelet's CPU is read from ``/proc/<pid>/stat`` with
its idle rate (PLEG relists, housekeeping; measured just before) subtracted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("PYKUBELET_TREE") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

from loopback_server import loopback_settings  # noqa: E402  (bench/, beside this file)

# --------------------------------------------------------------------------- client side


def _client_ctx(a: argparse.Namespace) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    return ctx


async def _load(a: argparse.Namespace) -> dict[str, float]:
    import aiohttp

    lat: list[float] = []
    errors = 0
    conn = aiohttp.TCPConnector(ssl=_client_ctx(a), limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        # warm up every connection (TLS handshakes are not what we measure)
        await asyncio.gather(*(session.get(a.url) for _ in range(a.conc)))
        deadline = time.perf_counter() + a.duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                async with session.get(a.url) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(a.conc)))
        elapsed = time.perf_counter() - t0
    lat.sort()
    return {
        "rps": len(lat) / elapsed,
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "errors": errors,
    }


def _append(path: str, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


async def _follow(a: argparse.Namespace) -> dict[str, float]:
    import aiohttp

    from pykubelet.logs import encode_records

    conn = aiohttp.TCPConnector(ssl=_client_ctx(a))
    async with aiohttp.ClientSession(connector=conn) as session:
        async with session.get(a.url + "?follow=true&tailLines=1") as resp:
            got = b""
            while b"ready\n" not in got:
                got += await resp.content.readany()
            # latency: write one line, wait for it
            lats = []
            for i in range(a.samples):
                t = time.perf_counter()
                _append(a.log, encode_records("stdout", f"ping {i}\n".encode(), time.time_ns()))
                want = f"ping {i}\n".encode()
                buf = b""
                while want not in buf:
                    buf += await resp.content.readany()
                lats.append(time.perf_counter() - t)
            lats.sort()
            # throughput: a writer thread appends pre-encoded records as fast as it can
            line = b"x" * 199 + b"\n"
            block = encode_records("stdout", line * 512, time.time_ns())
            payload_per_block = len(line) * 512
            blocks = a.mbytes * (1 << 20) // payload_per_block
            expect = blocks * payload_per_block

            def write() -> None:
                with open(a.log, "ab") as f:
                    for _ in range(blocks):
                        f.write(block)

            t0 = time.perf_counter()
            th = threading.Thread(target=write)
            th.start()
            n = 0
            try:
                async with asyncio.timeout(60):
                    while n < expect:
                        chunk = await resp.content.readany()
                        if not chunk:
                            break
                        n += len(chunk)
            except TimeoutError:
                print(f"follow stalled at {n} of {expect} bytes", file=sys.stderr)
                raise
            elapsed = time.perf_counter() - t0
            th.join()
    return {
        "mb_s": n / elapsed / (1 << 20),
        "raw_mb_s": blocks * len(block) / elapsed / (1 << 20),
        "lat_p50_ms": lats[len(lats) // 2] * 1000,
        "lat_p99_ms": lats[min(len(lats) - 1, int(len(lats) * 0.99))] * 1000,
        "lat_max_ms": lats[-1] * 1000,
    }


async def _fanout(a: argparse.Namespace) -> dict[str, float]:
    """``a.conc`` followers of one file: report when all are subscribed, stay idle, then time
    one line reaching all of them."""
    import aiohttp

    from pykubelet.logs import encode_records

    conn = aiohttp.TCPConnector(ssl=_client_ctx(a), limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        resps = []
        for _ in range(a.conc):
            r = await session.get(a.url + "?follow=true&tailLines=1")
            await r.content.readany()  # the history line: this follower is subscribed
            resps.append(r)
        print("subscribed", flush=True)
        await asyncio.sleep(a.duration)

        async def until(r: aiohttp.ClientResponse) -> float:
            buf = b""
            while b"fanout\n" not in buf:
                buf += await r.content.readany()
            return time.perf_counter()

        t0 = time.perf_counter()
        _append(a.log, encode_records("stdout", b"fanout\n", time.time_ns()))
        done = await asyncio.gather(*(until(r) for r in resps))
        for r in resps:
            r.close()
    return {"all_ms": (max(done) - t0) * 1000, "first_ms": (min(done) - t0) * 1000}


def client_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--client", choices=["load", "follow", "fanout"], required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--conc", type=int, default=1)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--log", default="")
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--mbytes", type=int, default=200)
    a = p.parse_args(list(argv))
    fn = {"load": _load, "follow": _follow, "fanout": _fanout}[a.client]
    print(json.dumps(asyncio.run(fn(a))))
    return 0


# --------------------------------------------------------------------------- server side


def _pods(n: int) -> list[object]:
    from pykubelet.api import (
        ContainerStateRunning,
        ContainerStateView,
        ContainerStatusView,
        Pod,
        PodCondition,
        PodStatus,
    )

    pods: list[object] = []
    for i in range(n):
        pod = Pod.from_dict(
            {
                "metadata": {
                    "name": f"pod-{i:03d}",
                    "namespace": "default",
                    "uid": f"00000000-0000-0000-0000-{i:012d}",
                    "labels": {"app": "bench", "index": str(i)},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox:1.35",
                            "command": ["sh", "-c", "while true; do sleep 1; done"],
                            "env": [{"name": "A", "value": "b"}],
                        }
                    ]
                },
            }
        )
        status = PodStatus(
            phase="Running",
            host_ip="127.0.0.1",
            pod_ip=f"10.0.{i // 250}.{i % 250 + 1}",
            start_time=1_700_000_000,
            conditions=(PodCondition(type="Ready", status="True", last_transition_time=1.7e9),),
            container_statuses=(
                ContainerStatusView(
                    name="main",
                    image="busybox:1.35",
                    state=ContainerStateView(running=ContainerStateRunning(started_at=1.7e9)),
                    ready=True,
                    container_id=f"pykubelet://c{i}",
                ),
            ),
        )
        pods.append(pod.with_status(status))
    return pods


class _Pods:
    def __init__(self, pods: Sequence[object]) -> None:
        self.pods = tuple(pods)
        # None: a plain PodLister; a callable: a VersionedPodLister (the /pods+gen rows)
        self.generation: object = None

    def list_pods(self):  # type: ignore[no-untyped-def]
        # fresh views on every call, as the pod manager builds them
        return [p.with_status(p.status) for p in self.pods]  # type: ignore[attr-defined]

    def get_pod(self, namespace, name):  # type: ignore[no-untyped-def]
        for p in self.pods:
            if p.meta.namespace == namespace and p.meta.name == name:  # type: ignore[attr-defined]
                return p
        return None

    def sync_loop_healthy(self) -> bool:
        return True


class _Runtime:
    def __init__(self, log_path: str) -> None:
        self.log_path = log_path

    async def container_status(self, cid: str):  # type: ignore[no-untyped-def]
        from pykubelet.runtime.types import ContainerState, ContainerStatus

        return ContainerStatus(
            id=cid,
            sandbox_id="s",
            name="main",
            attempt=0,
            state=ContainerState.RUNNING,
            image="busybox:1.35",
            log_path=self.log_path,
        )


def _run_client(args: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, timeout=100, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def server_main(
    duration: float, only_follow: bool = False, mbytes: int = 200, only_pods: bool = False
) -> None:
    from pykubelet.logs import encode_records
    from pykubelet.security.certs import create_client_cert
    from pykubelet.server import KubeletServers, ServerBackends

    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    ca, settings = loopback_settings(tmp)
    client = create_client_cert(str(tmp), "bench", ["system:masters"], ca=ca)
    log = tmp / "main" / "0.log"
    log.parent.mkdir()
    log.write_bytes(encode_records("stdout", b"ready\n", time.time_ns()))
    pods = _pods(110)
    import logging

    logging.getLogger("pykubelet.server.requests").setLevel(logging.WARNING)
    lister = _Pods(pods)
    servers = KubeletServers(
        settings,
        ServerBackends(pods=lister, runtime=_Runtime(str(log))),  # type: ignore[arg-type]
    )
    task = asyncio.create_task(servers.run())
    await servers.ready.wait()
    base = f"https://127.0.0.1:{servers.full_port}"
    creds = ["--ca", ca.cert_file, "--cert", client.cert_file, "--key", client.key_file]
    body_len = len(
        __import__("pykubelet.server.pods", fromlist=["encode_pod_list"]).encode_pod_list(pods)
    )
    print(
        f"/pods body with 110 pods: {body_len} bytes; {os.cpu_count()} cores; "
        f"{duration:.0f} s per run"
    )
    print(f"{'endpoint':<10} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    try:
        for path in () if only_follow else ("/pods",) if only_pods else ("/pods", "/healthz"):
            for conc in (16,) if only_pods else (1, 16, 64):
                r = await asyncio.to_thread(
                    _run_client,
                    [
                        "--client",
                        "load",
                        "--url",
                        base + path,
                        "--conc",
                        str(conc),
                        "--duration",
                        str(duration),
                        *creds,
                    ],
                )
                print(
                    f"{path:<10} {conc:>7} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} "
                    f"{r['p99_ms']:>8.2f} {int(r['errors']):>6}"
                )
        lister.generation = lambda: 0
        for conc in (1, 16, 64):
            r = await asyncio.to_thread(
                _run_client,
                [
                    "--client",
                    "load",
                    "--url",
                    base + "/pods",
                    "--conc",
                    str(conc),
                    "--duration",
                    str(duration),
                    *creds,
                ],
            )
            print(
                f"{'/pods+gen':<10} {conc:>7} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} "
                f"{r['p99_ms']:>8.2f} {int(r['errors']):>6}"
            )
        lister.generation = None
        if only_pods:
            return
        f = await asyncio.to_thread(
            _run_client,
            [
                "--client",
                "follow",
                "--url",
                base + "/containerLogs/default/pod-000/main",
                "--log",
                str(log),
                "--mbytes",
                str(mbytes),
                *creds,
            ],
        )
        print(
            f"log follow: {f['mb_s']:.1f} MB/s delivered ({f['raw_mb_s']:.1f} MB/s of CRI file); "
            f"write->client latency p50 {f['lat_p50_ms']:.1f} ms, p99 {f['lat_p99_ms']:.1f} ms, "
            f"max {f['lat_max_ms']:.1f} ms"
        )
        await _fanout_row(base, str(log), creds)
    finally:
        servers.stop()
        await task
        shutil.rmtree(tmp)


async def _fanout_row(base: str, log: str, creds: list[str], n: int = 1000) -> None:
    import resource

    idle_s = 2.0
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        "fanout",
        "--conc",
        str(n),
        "--duration",
        str(idle_s + 0.5),
        "--url",
        base + "/containerLogs/default/pod-000/main",
        "--log",
        log,
        *creds,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(90):
        while (await proc.stdout.readline()).strip() != b"subscribed":
            pass
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.sleep(idle_s)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        out, _ = await proc.communicate()
    f = json.loads(out.decode().strip().splitlines()[-1])
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    print(
        f"{n} followers of one file: server CPU {cpu / idle_s * 100:.1f} % while idle; "
        f"one line reaches the first in {f['first_ms']:.1f} ms, all in {f['all_ms']:.1f} ms"
    )


def _ab(url: str, token: str, conc: int, duration: float) -> dict[str, float]:
    """``token`` "": no ``Authorization`` header (the upstream kubelet's anonymous user)."""
    auth = ["-H", f"Authorization: Bearer {token}"] if token else []
    out = subprocess.run(
        ["ab", "-q", "-k", "-c", str(conc), "-t", str(duration), "-n", "100000000", *auth, url],
        capture_output=True, text=True, timeout=duration + 60, check=False,
    )  # fmt: skip
    rps = p50 = p99 = failed = non2xx = size = 0.0
    for line in out.stdout.splitlines():
        parts = line.split()
        if line.startswith("Document Length:"):
            size = float(parts[2])
        elif line.startswith("Requests per second:"):
            rps = float(parts[3])
        elif line.startswith("Failed requests:"):
            failed = float(parts[2])
        elif line.startswith("Non-2xx responses:"):
            non2xx = float(parts[2])
        elif line.strip().startswith("50%"):
            p50 = float(parts[1])
        elif line.strip().startswith("99%"):
            p99 = float(parts[1])
    if rps == 0:
        raise RuntimeError(out.stdout + out.stderr)
    if os.environ.get("BENCH_VERBOSE"):
        print(out.stdout)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": failed + non2xx, "bytes": size}


def _front_backends(tmp: Path, ca_file: str, observe: bool = True) -> tuple[object, object]:
    """What the agent wires in front of 10250 (agent.py, security/setup.py): bearer tokens and
    client certificates, the default ``Policy`` authorizer, the metrics observer chained to the
    request log and the audit log (written to a file by its thread), a pod lister that offers
    ``generation()`` as the pod manager does. Returns (backends, audit log)."""
    from pykubelet.auth.chain import build_authenticator
    from pykubelet.auth.setup import build_authorizer, build_token_authenticators
    from pykubelet.security.setup import FanOutObserver
    from pykubelet.server import ServerBackends
    from pykubelet.server.audit import AuditLog, AuditObserver
    from pykubelet.server.metrics import HttpMetricsObserver
    from pykubelet.server.requestlog import JsonRequestLog
    from pykubelet.stats.agent_metrics import AgentMetrics

    tokens = tmp / "tokens.csv"
    tokens.write_text("bench-token,bench,1,system:masters\n")
    authn = build_authenticator(
        client_ca_file=ca_file,
        anonymous_enabled=False,
        extra=build_token_authenticators(token_file=str(tokens)),
    )
    audit = AuditLog(str(tmp / "audit.log"), max_bytes=64 << 20, max_backups=1)
    observer = (
        HttpMetricsObserver(
            AgentMetrics(),
            FanOutObserver(JsonRequestLog(), AuditObserver(audit, node_name="bench-node")),
        )
        if observe
        else JsonRequestLog()  # --no-audit: what the audit log and metrics cost, by difference
    )
    lister = _Pods(_pods(110))
    lister.generation = lambda: 0
    backends = ServerBackends(
        pods=lister,
        runtime=_Runtime(""),  # type: ignore[arg-type]
        authenticator=authn,
        authorizer=build_authorizer("Policy"),
        observer=observer,
    )
    return backends, audit


async def front_main(
    duration: float,
    paths: Sequence[str],
    profile: str,
    observe: bool = True,
    upstream: bool = False,
) -> None:
    """/healthz and /pods at 16 keep-alive TLS connections, ab as the client; with ``upstream``
    the Go kubelet's too, one after the other, and their ratio."""
    if shutil.which("ab") is None:
        print("ab (apache2-utils) is not installed: no front-door figures")
        return
    why = ""
    if upstream:
        from cri_node import upstream_missing

        if why := upstream_missing():
            print(f"the upstream kubelet is not measured: {why}")
    async with contextlib.AsyncExitStack() as stack:
        up = None
        if upstream and not why:
            up = await stack.enter_async_context(_upstream_kubelet(110))
        await _front_runs(duration, paths, profile, observe, up)


async def _front_runs(
    duration: float, paths: Sequence[str], profile: str, observe: bool, up: Any
) -> None:
    import logging
    import resource

    from pykubelet.server import KubeletServers

    tmp = Path(tempfile.mkdtemp(prefix="bench-front-"))
    ca, settings = loopback_settings(tmp)
    # the request log's INFO line per request is a logging choice, not the front door's cost
    logging.getLogger("pykubelet.server.requests").setLevel(logging.WARNING)
    backends, audit = _front_backends(tmp, ca.cert_file, observe)
    audit.start()  # type: ignore[attr-defined]
    servers = KubeletServers(settings, backends)  # type: ignore[arg-type]
    task = asyncio.create_task(servers.run())
    await servers.ready.wait()
    base = f"https://127.0.0.1:{servers.full_port}"
    idle = await _idle_rate(up.pid) if up is not None else 0.0
    print(
        f"tree {ROOT}; loop {type(asyncio.get_running_loop()).__module__}; "
        f"{duration:.0f} s per run; audit log and metrics {'on' if observe else 'OFF'}; "
        f"{os.getloadavg()[0]:.1f} load"
        + (f"; upstream kubelet idle {idle * 100:.1f} % of a core (subtracted)" if up else "")
    )
    # Server CPU per request (this process; ab is a child) is what contention on a shared
    # machine distorts least; 1e6 / that is the rate one idle core would sustain.
    print(
        f"{'endpoint':<10} {'kubelet':<9} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'CPU us/req':>10} {'req/s/core':>10} {'bytes':>7}"
    )
    ours = "token, Policy, " + ("audit log + metrics" if observe else "request log only")
    rows: list[tuple[str, str, str, dict[str, float]]] = []

    def show(path: str, who: str, r: dict[str, float]) -> None:
        print(
            f"{path:<10} {who:<9} {16:>5} {r['rps']:>9.0f} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {int(r['errors']):>6} {r['cpu_us']:>10.0f} "
            f"{1e6 / r['cpu_us']:>10.0f} {r['bytes']:>7.0f}",
            flush=True,
        )

    try:
        for path in paths:
            if up is not None:
                from cri_node import cpu_seconds

                c0, t0 = cpu_seconds(up.pid), time.monotonic()
                r = await asyncio.to_thread(
                    _ab, f"https://127.0.0.1:{up.port}{path}", "", 16, duration
                )
                cpu = cpu_seconds(up.pid) - c0 - idle * (time.monotonic() - t0)
                r["cpu_us"] = cpu / max(1.0, r["rps"] * duration) * 1e6
                show(path, "upstream", r)
                rows.append((path, "upstream v1.20.2", "anonymous, AlwaysAllow, no audit log", r))
                up.proc.send_signal(signal.SIGSTOP)  # its background work off pykubelet's run
            prof = cProfile.Profile() if profile else None
            if prof is not None:
                prof.enable()  # the event loop's thread only: the server's work
            try:
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                r = await asyncio.to_thread(_ab, base + path, "bench-token", 16, duration)
                r1 = resource.getrusage(resource.RUSAGE_SELF)
            finally:
                if up is not None:
                    up.proc.send_signal(signal.SIGCONT)
            if prof is not None:
                prof.disable()
                prof.dump_stats(f"{profile}{path.strip('/')}.pstats")
            cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
            r["cpu_us"] = cpu / max(1.0, r["rps"] * duration) * 1e6
            show(path, "pykubelet", r)
            rows.append((path, "pykubelet", ours, r))
    finally:
        servers.stop()
        await task
        await asyncio.to_thread(audit.close)  # type: ignore[attr-defined]
        shutil.rmtree(tmp)
    if up is not None:
        _side_by_side(rows)


def _side_by_side(rows: Sequence[tuple[str, str, str, dict[str, float]]]) -> None:
    """One table, each endpoint's pykubelet row with its ratio to the upstream row above it."""
    print()
    print(
        "| endpoint | kubelet | auth and observers | req/s | p50 ms | p99 ms | CPU µs/req "
        "| body bytes | pykubelet / upstream (req/s; CPU per request) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---|")
    theirs: dict[str, dict[str, float]] = {}
    for path, who, auth, r in rows:
        ratio = ""
        if who == "pykubelet" and path in theirs:
            u = theirs[path]
            ratio = f"{r['rps'] / u['rps']:.2f}x; {r['cpu_us'] / u['cpu_us']:.2f}x"
        else:
            theirs[path] = r
        print(
            f"| {path} | {who} | {auth} | {r['rps']:,.0f} | {r['p50_ms']:.0f} | "
            f"{r['p99_ms']:.0f} | {r['cpu_us']:.0f} | {r['bytes']:,.0f} | {ratio} |"
        )


async def _idle_rate(pid: int, window_s: float = 3.0) -> float:
    """CPU seconds per second of ``pid`` while nobody calls it."""
    from cri_node import cpu_seconds

    c0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(window_s)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


@contextlib.asynccontextmanager
async def _upstream_kubelet(n: int) -> AsyncIterator[Any]:
    """The Go kubelet v1.20.2 on a private containerd with ``n`` static pods, all running and
    all ``Running`` in its /pods; yields its ``cri_node.Agent``."""
    from cri_node import containerd_node, kubelet_agent, running, wait_until, write_manifests

    work = Path(tempfile.mkdtemp(prefix="bench-front-upstream-"))
    log = Path(tempfile.mkstemp(prefix="bench-front-kubelet-", suffix=".log")[1])
    t0 = time.monotonic()
    async with containerd_node(work) as (c, rt):
        manifests = work / "manifests"
        manifests.mkdir()
        write_manifests(manifests, n)
        agent = kubelet_agent(work, c, manifests)
        agent.start(log)
        try:

            async def ready() -> bool:
                assert agent.proc is not None
                if agent.proc.poll() is not None:
                    raise RuntimeError(f"the upstream kubelet exited; see {log}")
                if await running(rt) < n:
                    return False
                body = await asyncio.to_thread(_get, f"https://127.0.0.1:{agent.port}/pods")
                items = json.loads(body).get("items") or []
                return len(items) >= n and all(
                    p.get("status", {}).get("phase") == "Running" for p in items
                )

            if not await wait_until(ready, 300):
                raise RuntimeError(f"{n} pods not running on the upstream kubelet; see {log}")
            print(
                f"upstream kubelet v1.20.2 (pid {agent.pid}, port {agent.port}): {n} static "
                f"pods running on containerd after {time.monotonic() - t0:.0f} s",
                flush=True,
            )
            yield agent
        finally:
            agent.stop()
    await asyncio.to_thread(log.unlink)  # kept when something failed


def _get(url: str) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the Go kubelet's self-signed serving certificate
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            return r.read()  # type: ignore[no-any-return]
    except OSError:
        return b"{}"  # not serving yet


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """``auto``: the loop the agent would pick in that tree (``server.eventloop`` when the tree
    has it, asyncio's before); ``asyncio`` / ``uvloop`` force one."""
    if name == "asyncio":
        return None
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    try:
        from pykubelet.server.eventloop import choose_loop
    except ImportError:
        return None
    return choose_loop().factory


def front_cli(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(description="front-door figures (see the module docstring)")
    p.add_argument("--front", action="store_true")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--paths", default="/healthz,/pods")
    p.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    p.add_argument("--profile", default="", help="cProfile stats to PREFIX<endpoint>.pstats")
    p.add_argument("--no-audit", action="store_true", help="request log only: no audit, metrics")
    p.add_argument(
        "--upstream", action="store_true", help="the Go kubelet v1.20.2 side by side (root)"
    )
    a = p.parse_args(list(argv))
    with asyncio.Runner(loop_factory=_loop_factory(a.loop)) as runner:
        runner.run(
            front_main(a.duration, a.paths.split(","), a.profile, not a.no_audit, a.upstream)
        )
    return 0


def main() -> int:
    if "--client" in sys.argv:
        return client_main(sys.argv[1:])
    if "--front" in sys.argv:
        return front_cli(sys.argv[1:])
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--only-follow", action="store_true")
    p.add_argument("--only-pods", action="store_true", help="just /pods at 16 clients")
    p.add_argument("--mbytes", type=int, default=200)
    a = p.parse_args()
    asyncio.run(server_main(a.duration, a.only_follow, a.mbytes, a.only_pods))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

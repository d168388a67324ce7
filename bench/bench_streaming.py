"""Streaming benchmark: exec latency, echo throughput, port-forward throughput, concurrency.

Runs the real handlers in a child process on 127.0.0.1 with the test-local subprocess runtime
and an in-"pod" TCP echo server; the clients run in this process. Plain TCP, so most figures
are the protocol stack's; two echo rows repeat over TLS, as the kubelet port always is.
Prints one table; bounded well under 2 minutes. The machine's load shows in every row.
Usage: .venv/bin/python bench/bench_streaming.py (both sides run on the loop the agent would
pick: asyncio's, or uvloop with ``PYKUBELET_EVENT_LOOP=uvloop``).

``--exec [N]``: exec `true` only, N sessions (300) alternating SPDY and WebSocket: p50 / p99 and
the server's CPU per session (from /proc, every thread, so it survives a loaded machine).
``PYKUBELET_TREE=/path/to/checkout`` runs the server from another tree (before/after tables).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.streaming.conftest import StreamServer, make_tls_files, start_server
from tests.streaming.spdy_client import SpdyClient

# the server child may come from another checkout (before/after); the clients are this tree's
SERVER = Path(os.environ.get("PYKUBELET_TREE") or Path(__file__).resolve().parent.parent)

V4 = ["v4.channel.k8s.io"]
CHUNK = 64 * 1024


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


async def spdy_exec_true(srv: StreamServer) -> None:
    c = await SpdyClient.connect(
        srv.host, srv.port, "/exec/default/p/main?command=true&output=1", V4
    )
    c.open({"streamtype": "error"})
    c.open({"streamtype": "stdout"})
    await c.pump()


async def ws_exec_true(srv: StreamServer, http: aiohttp.ClientSession) -> None:
    url = srv.base_url + "/exec/default/p/main?command=true&output=1"
    async with http.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
        async for _ in ws:
            pass


async def latency(name: str, fn: Callable[[], Awaitable[None]], n: int) -> list[str]:
    samples: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return [name, f"{statistics.median(samples):.2f} ms", f"{pct(samples, 0.99):.2f} ms", str(n)]


async def direct_cat_rtt(n: int) -> list[float]:
    proc = await asyncio.create_subprocess_exec("cat", stdin=-1, stdout=-1)
    assert proc.stdin and proc.stdout
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        proc.stdin.write(b"x")
        await proc.stdin.drain()
        await proc.stdout.read(1)
        out.append((time.perf_counter() - t0) * 1000)
    proc.stdin.close()
    await proc.wait()
    return out


async def spdy_cat_rtt(srv: StreamServer, n: int) -> list[float]:
    c = await SpdyClient.connect(
        srv.host, srv.port, "/exec/default/p/main?command=cat&input=1&output=1", V4
    )
    _, stdin, out = (c.open({"streamtype": t}) for t in ("error", "stdin", "stdout"))
    samples = []
    from pykubelet.streaming import DataReceived

    for _ in range(n):
        t0 = time.perf_counter()
        await c.send(stdin, b"x")
        while True:
            evs = c.session.receive_data(await c.reader.read(65536))
            if any(isinstance(e, DataReceived) and e.stream_id == out for e in evs):
                break
        samples.append((time.perf_counter() - t0) * 1000)
    c.close()
    return samples


async def ws_cat_rtt(srv: StreamServer, http: aiohttp.ClientSession, n: int) -> list[float]:
    url = srv.base_url + "/exec/default/p/main?command=cat&input=1&output=1"
    samples = []
    async with http.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
        await ws.receive_bytes()
        for _ in range(n):
            t0 = time.perf_counter()
            await ws.send_bytes(b"\x00x")
            await ws.receive_bytes()
            samples.append((time.perf_counter() - t0) * 1000)
    return samples


async def spdy_echo(
    srv: StreamServer, path: str, headers: list[dict[str, str]], total: int
) -> float:
    version = headers[0].get("_version", "")
    headers = [{k: v for k, v in h.items() if k != "_version"} for h in headers]
    c = await SpdyClient.connect(srv.host, srv.port, path, [version], srv.client_ssl())
    ids = [c.open(h) for h in headers]
    src, dst = ids[1], ids[2] if len(ids) > 2 else ids[1]
    payload = b"\xab" * CHUNK
    from pykubelet.streaming import DataReceived

    t0 = time.perf_counter()

    async def writer() -> None:
        for _ in range(total // CHUNK):
            await c.send(src, payload)

    task = asyncio.ensure_future(writer())
    got = 0
    while got < total:
        for ev in c.session.receive_data(await c.reader.read(1 << 20)):
            if isinstance(ev, DataReceived) and ev.stream_id == dst:
                got += len(ev.data)
    elapsed = time.perf_counter() - t0
    await task
    c.close()
    return total / elapsed / 1e6


async def ws_echo(
    srv: StreamServer,
    http: aiohttp.ClientSession,
    path: str,
    protocol: str,
    in_ch: int,
    out_ch: int,
    skip: int,
    total: int,
) -> float:
    payload = bytes([in_ch]) + b"\xab" * CHUNK
    async with http.ws_connect(
        srv.base_url + path, protocols=(protocol,), max_msg_size=0, ssl=srv.ws_ssl()
    ) as ws:
        for _ in range(skip):
            await ws.receive_bytes()
        t0 = time.perf_counter()

        async def writer() -> None:
            for _ in range(total // CHUNK):
                await ws.send_bytes(payload)

        task = asyncio.ensure_future(writer())
        got = 0
        while got < total:
            msg = await ws.receive_bytes()
            if msg[0] == out_ch:
                got += len(msg) - 1
        elapsed = time.perf_counter() - t0
        await task
    return total / elapsed / 1e6


async def echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1 << 20):
            writer.write(data)
            await writer.drain()
        writer.close()

    srv = await asyncio.start_server(echo, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


async def serve() -> None:
    tls = make_tls_files(Path(tempfile.mkdtemp(prefix="bench-streaming-")))
    runner, srv = await start_server(None)
    tls_runner, tls_srv = await start_server(tls)
    echo, port = await echo_server()
    print(srv.port, tls_srv.port, port, tls[0], flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        echo.close()
        await runner.cleanup()
        await tls_runner.cleanup()
        shutil.rmtree(Path(tls[0]).parent, ignore_errors=True)


def _cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def exec_only(n: int) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVER / "bench" / "bench_streaming.py"), "--serve",
        stdin=-1, stdout=-1,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    port = int((await child.stdout.readline()).decode().split()[0])
    srv = StreamServer("127.0.0.1", port, None, "", False)  # type: ignore[arg-type]
    lat: dict[str, list[float]] = {"SPDY": [], "WebSocket": []}
    cpu = dict.fromkeys(lat, 0.0)
    try:
        async with aiohttp.ClientSession() as http:
            one: dict[str, Callable[[], Awaitable[None]]] = {
                "SPDY": lambda: spdy_exec_true(srv),
                "WebSocket": lambda: ws_exec_true(srv, http),
            }
            for _ in range(n):
                for name, fn in one.items():
                    c0, t0 = _cpu_s(child.pid), time.perf_counter()
                    await fn()
                    lat[name].append((time.perf_counter() - t0) * 1000)
                    cpu[name] += _cpu_s(child.pid) - c0
    finally:
        child.stdin.close()
        await child.wait()
    print(f"server tree {SERVER}; {n} sessions each, alternating")
    print(f"{'exec `true`':<12} {'p50 ms':>8} {'p99 ms':>8} {'server CPU us/session':>22}")
    for name, xs in lat.items():
        print(
            f"{name:<12} {statistics.median(xs):>8.2f} {pct(xs, 0.99):>8.2f} "
            f"{cpu[name] / n * 1e6:>22.0f}"
        )


async def main() -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVER / "bench" / "bench_streaming.py"), "--serve",
        stdin=-1, stdout=-1,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    fields = (await child.stdout.readline()).decode().split()
    server_port, tls_port, port = map(int, fields[:3])
    srv = StreamServer("127.0.0.1", server_port, None, "", False)  # type: ignore[arg-type]
    tls_srv = StreamServer("127.0.0.1", tls_port, None, fields[3], True)  # type: ignore[arg-type]
    rows: list[list[str]] = []
    total = 256 * 1024 * 1024
    try:
        async with aiohttp.ClientSession() as http:
            rows.append(
                await latency("exec `true` round trip, SPDY", lambda: spdy_exec_true(srv), 100)
            )
            rows.append(
                await latency(
                    "exec `true` round trip, WebSocket", lambda: ws_exec_true(srv, http), 100
                )
            )
            base = await direct_cat_rtt(1000)
            for name, samples in (
                ("1-byte message via `cat`, direct pipe (baseline)", base),
                ("1-byte message via `cat`, SPDY", await spdy_cat_rtt(srv, 1000)),
                ("1-byte message via `cat`, WebSocket", await ws_cat_rtt(srv, http, 1000)),
            ):
                rows.append(
                    [
                        name,
                        f"{statistics.median(samples):.3f} ms",
                        f"{pct(samples, 0.99):.3f} ms",
                        "1000",
                    ]
                )
            rows.append(
                [
                    "added p99 latency per message, SPDY",
                    "",
                    f"{pct(await spdy_cat_rtt(srv, 1000), 0.99) - pct(base, 0.99):.3f} ms",
                    "",
                ]
            )
            rows.append(
                [
                    "added p99 latency per message, WebSocket",
                    "",
                    f"{pct(await ws_cat_rtt(srv, http, 1000), 0.99) - pct(base, 0.99):.3f} ms",
                    "",
                ]
            )
            exec_headers = [
                {"streamtype": "error", "_version": "v4.channel.k8s.io"},
                {"streamtype": "stdin"},
                {"streamtype": "stdout"},
            ]
            mbps = await spdy_echo(
                srv, "/exec/default/p/main?command=cat&input=1&output=1", exec_headers, total
            )
            rows.append(
                ["stdin→stdout echo (`cat`), SPDY", f"{mbps:.0f} MB/s", "", f"{total >> 20} MiB"]
            )
            mbps = await ws_echo(
                srv,
                http,
                "/exec/default/p/main?command=cat&input=1&output=1",
                "v4.channel.k8s.io",
                0,
                1,
                1,
                total,
            )
            rows.append(
                [
                    "stdin→stdout echo (`cat`), WebSocket",
                    f"{mbps:.0f} MB/s",
                    "",
                    f"{total >> 20} MiB",
                ]
            )
            mbps = await spdy_echo(
                tls_srv, "/exec/default/p/main?command=cat&input=1&output=1", exec_headers, total
            )
            rows.append(
                ["stdin→stdout echo, SPDY over TLS", f"{mbps:.0f} MB/s", "", f"{total >> 20} MiB"]
            )
            mbps = await ws_echo(
                tls_srv,
                http,
                "/exec/default/p/main?command=cat&input=1&output=1",
                "v4.channel.k8s.io",
                0,
                1,
                1,
                total,
            )
            rows.append(
                [
                    "stdin→stdout echo, WebSocket over TLS",
                    f"{mbps:.0f} MB/s",
                    "",
                    f"{total >> 20} MiB",
                ]
            )
            pf_headers = [
                {
                    "streamtype": "error",
                    "port": str(port),
                    "requestid": "0",
                    "_version": "portforward.k8s.io",
                },
                {"streamtype": "data", "port": str(port), "requestid": "0"},
            ]
            mbps = await spdy_echo(srv, "/portForward/default/p", pf_headers, total)
            rows.append(
                ["port-forward to TCP echo, SPDY", f"{mbps:.0f} MB/s", "", f"{total >> 20} MiB"]
            )
            mbps = await ws_echo(
                srv,
                http,
                f"/portForward/default/p?port={port}",
                "v4.channel.k8s.io",
                0,
                0,
                2,
                total,
            )
            rows.append(
                [
                    "port-forward to TCP echo, WebSocket",
                    f"{mbps:.0f} MB/s",
                    "",
                    f"{total >> 20} MiB",
                ]
            )
            concurrent: tuple[tuple[str, Callable[[], Awaitable[None]]], ...] = (
                ("100 concurrent exec `true`, SPDY", lambda: spdy_exec_true(srv)),
                ("100 concurrent exec `true`, WebSocket", lambda: ws_exec_true(srv, http)),
            )
            for name, one in concurrent:
                t0 = time.perf_counter()
                await asyncio.gather(*(one() for _ in range(100)))
                rows.append([name, f"{(time.perf_counter() - t0):.2f} s total", "", "100"])
    finally:
        child.stdin.close()
        await child.wait()
    head = ["measurement", "p50 / rate", "p99", "n / size"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    # both sides on the loop the agent would pick (PYKUBELET_EVENT_LOOP=asyncio to compare)
    from pykubelet.server.eventloop import choose_loop

    choice = choose_loop()
    if "--serve" not in sys.argv:
        print(f"event loop: {choice.why}; load average {os.getloadavg()[0]:.1f}")
    with asyncio.Runner(loop_factory=choice.factory) as runner:
        if "--serve" in sys.argv:
            runner.run(serve())
        elif "--exec" in sys.argv:
            i = sys.argv.index("--exec")
            runner.run(exec_only(int(sys.argv[i + 1]) if len(sys.argv) > i + 1 else 300))
        else:
            runner.run(main())

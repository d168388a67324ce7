"""Resilience of the front door: 10,000 idle connections plus 200 slowloris clients, and an
admin who must still be served.

The server (the real ``KubeletServers``, TLS on 127.0.0.1) runs in this process. An attacker
process holds ``--idle`` TCP connections that never send a byte (reconnecting whenever the
server cuts one; spread over 127.0.0.10-29, under the per-address cap) and ``--slow`` TLS
connections that drip one header line a second (slowloris). An admin process, from 127.0.0.1
with a client certificate, times ``/healthz`` and ``GET /pods`` (110 pods) on one keep-alive
connection during the attack. Reported: admin p50/p99, server RSS before, at the peak and after
the attack ends, connections held and refused. Bounded (< 2 min).

    .venv/bin/python bench/bench_resilience.py [--idle 10000] [--slow 200] [--duration 20]
        [--attacker-nice 0]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("PYKUBELET_TREE") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopback_server import loopback_settings  # noqa: E402  (bench/, beside this file)


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --------------------------------------------------------------------------- attacker


async def _idle_one(port: int, source: str, stop: float, held: list[int]) -> None:
    while time.monotonic() < stop:
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        except OSError:
            await asyncio.sleep(0.5)
            continue
        held[0] += 1
        try:
            await asyncio.wait_for(r.read(), timeout=max(0.1, stop - time.monotonic()))
        except (TimeoutError, OSError):
            pass
        finally:
            held[0] -= 1
            w.transport.abort()


async def _slow_one(port: int, stop: float, cut: list[int]) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    while time.monotonic() < stop:
        try:
            r, w = await asyncio.open_connection(
                "127.0.0.1", port, ssl=ctx, local_addr=("127.0.0.30", 0)
            )
            w.write(b"GET /pods HTTP/1.1\r\nHost: x\r\n")
            while time.monotonic() < stop:
                await asyncio.sleep(1.0)
                w.write(b"X-Slow: 1\r\n")
                await w.drain()
                if r.at_eof():
                    break
        except (OSError, ssl.SSLError):
            cut[0] += 1
            await asyncio.sleep(0.2)


async def attacker(port: int, idle: int, slow: int, duration: float) -> None:
    _raise_nofile()
    stop = time.monotonic() + duration
    held, cut = [0], [0]
    tasks = [
        asyncio.ensure_future(_idle_one(port, f"127.0.0.{10 + i % 20}", stop, held))
        for i in range(idle)
    ]
    tasks += [asyncio.ensure_future(_slow_one(port, stop, cut)) for _ in range(slow)]
    peak = 0
    while time.monotonic() < stop:
        await asyncio.sleep(0.5)
        peak = max(peak, held[0])
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"idle_peak": peak, "slow_cut": cut[0]}))


# --------------------------------------------------------------------------- admin


async def admin(port: int, ca: str, cert: str, key: str, duration: float) -> None:
    import aiohttp

    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    lat: dict[str, list[float]] = {"/healthz": [], "/pods": []}
    errors = 0
    conn = aiohttp.TCPConnector(ssl=ctx, limit=1)
    async with aiohttp.ClientSession(connector=conn) as s:
        stop = time.monotonic() + duration
        while time.monotonic() < stop:
            for path, bucket in lat.items():
                t = time.perf_counter()
                try:
                    async with s.get(f"https://127.0.0.1:{port}{path}") as r:
                        await r.read()
                        errors += r.status != 200
                except aiohttp.ClientError:
                    errors += 1
                bucket.append(time.perf_counter() - t)
            await asyncio.sleep(0.05)
    out: dict[str, float] = {"errors": errors}
    for path, v in lat.items():
        v.sort()
        out[path + " p50"] = v[len(v) // 2] * 1000
        out[path + " p99"] = v[min(len(v) - 1, int(len(v) * 0.99))] * 1000
        out[path + " n"] = len(v)
    print(json.dumps(out))


# --------------------------------------------------------------------------- server


class _GcPauses:
    """The cyclic GC's pauses (they run on the event loop's thread), longest per generation."""

    def __init__(self) -> None:
        self.longest = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._t = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
            return
        g = info["generation"]
        self.longest[g] = max(self.longest[g], time.perf_counter() - self._t)
        self.count[g] += 1


async def _loop_lag(late: list[float], busy: list[float]) -> None:
    """How late the server's event loop wakes from a 10 ms sleep, and how much of each such
    interval the loop's thread spent on the CPU: its own work (what the listener can change)
    as against waiting for a CPU (what it cannot)."""
    loop = asyncio.get_running_loop()
    while True:
        t, cpu = loop.time(), time.thread_time()
        await asyncio.sleep(0.01)
        late.append(loop.time() - t - 0.01)
        busy.append(time.thread_time() - cpu)


async def server(idle: int, slow: int, duration: float, attacker_nice: int = 0) -> None:
    import logging

    from bench_api import _Pods, _pods, _Runtime

    from pykubelet.security.certs import create_client_cert
    from pykubelet.server import KubeletServers, ServerBackends

    logging.getLogger("pykubelet").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="bench-resilience-"))
    ca, settings = loopback_settings(tmp)
    client = create_client_cert(str(tmp), "admin", ["system:masters"], ca=ca)
    servers = KubeletServers(
        settings,
        ServerBackends(pods=_Pods(_pods(110)), runtime=_Runtime("")),  # type: ignore[arg-type]
    )
    task = asyncio.create_task(servers.run())
    await servers.ready.wait()
    gc.freeze()  # as the agent does once it is ready
    port = servers.full_port
    assert port is not None
    me = [sys.executable, __file__]
    await asyncio.sleep(1.0)
    rss0 = _rss_mib()
    niced = ["nice", "-n", str(attacker_nice)] if attacker_nice else []
    attack = await asyncio.create_subprocess_exec(
        *niced, *me, "--role", "attacker", "--port", str(port), "--idle", str(idle),
        "--slow", str(slow), "--duration", str(duration), stdout=subprocess.PIPE,
    )  # fmt: skip
    await asyncio.sleep(min(5.0, duration / 3))  # let the attack build up
    adm = await asyncio.create_subprocess_exec(
        *me, "--role", "admin", "--port", str(port), "--ca", ca.cert_file,
        "--cert", client.cert_file, "--key", client.key_file,
        "--duration", str(duration - min(5.0, duration / 3) - 1), stdout=subprocess.PIPE,
    )  # fmt: skip
    pauses = _GcPauses()
    lag: list[float] = []
    busy: list[float] = []
    lag_probe = asyncio.create_task(_loop_lag(lag, busy))
    peak, held = rss0, 0
    guard = servers.guard
    admitted0, cpu0 = guard.admitted, resource.getrusage(resource.RUSAGE_SELF)
    while adm.returncode is None:
        peak, held = max(peak, _rss_mib()), max(held, guard.open)
        try:
            await asyncio.wait_for(adm.wait(), 0.5)
        except TimeoutError:
            pass
    lag_probe.cancel()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    admitted = guard.admitted - admitted0
    assert adm.stdout is not None and attack.stdout is not None
    a = json.loads((await adm.stdout.read()).decode().strip().splitlines()[-1])
    k = json.loads((await attack.stdout.read()).decode().strip().splitlines()[-1])
    await attack.wait()
    t_end = time.monotonic()
    while guard.open > 0 and time.monotonic() - t_end < 30:  # noqa: ASYNC110 (a bench poll)
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)
    rss1 = _rss_mib()
    print(
        f"attack: {idle} idle TCP connections (reconnecting), {slow} slowloris TLS clients, "
        f"{duration:.0f} s (attacker nice {attacker_nice}); server held up to {held} connections, "
        f"refused {guard.refused}, "
        f"cut {guard.timed_out} at the header deadline; attacker peak {k['idle_peak']} idle"
    )
    print(f"{'admin request':<16} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}")
    for path in ("/healthz", "/pods"):
        print(
            f"{path:<16} {int(a[path + ' n']):>5} {a[path + ' p50']:>8.1f} {a[path + ' p99']:>8.1f}"
        )
    print(f"admin errors: {int(a['errors'])}")
    for what, v in (("late by", lag), ("on the CPU for", busy)):
        v.sort()
        if v:
            print(
                f"server event loop {what} (per 10 ms sleep, {len(v)} samples): "
                f"p50 {v[len(v) // 2] * 1000:.1f} ms, "
                f"p99 {v[min(len(v) - 1, int(len(v) * 0.99))] * 1000:.1f} ms, "
                f"max {v[-1] * 1000:.1f} ms"
            )
    print(
        "cyclic GC (all of the run): "
        + ", ".join(
            f"gen{g} {pauses.count[g]}x, longest {pauses.longest[g] * 1000:.1f} ms"
            for g in range(3)
        )
    )
    print(
        f"server CPU while the admin measured: {cpu_s:.1f} s for {admitted} connections "
        f"accepted ({cpu_s / max(admitted, 1) * 1e6:.0f} µs per connection, admin requests "
        f"included); load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"server RSS: {rss0:.0f} MiB before, {peak:.0f} MiB peak (+{peak - rss0:.0f}), "
        f"{rss1:.0f} MiB after (+{rss1 - rss0:.0f}); connections open after: {guard.open}"
    )
    servers.stop()
    await task
    shutil.rmtree(tmp)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--role", choices=["server", "attacker", "admin"], default="server")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--idle", type=int, default=10_000)
    p.add_argument("--slow", type=int, default=200)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument(
        "--attacker-nice",
        type=int,
        default=0,
        help="run the attacker at this nice level (a remote attacker's CPU is not the node's)",
    )
    p.add_argument("--ca", default="")
    p.add_argument("--cert", default="")
    p.add_argument("--key", default="")
    a = p.parse_args()
    if a.role == "attacker":
        asyncio.run(attacker(a.port, a.idle, a.slow, a.duration))
    elif a.role == "admin":
        asyncio.run(admin(a.port, a.ca, a.cert, a.key, a.duration))
    else:
        asyncio.run(server(a.idle, a.slow, a.duration, a.attacker_nice))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Pod-spec layer: probe cost and probe fan-out, and CNI attach/release latency.

Run: .venv/bin/python bench/bench_podspec.py   (root for the namespace and CNI rows)

Rows:
- one httpGet / tcpSocket probe against a loopback server, from the host and from inside a
  network namespace (the setns thread is paid per probe);
- N httpGet probes run at once (a node's probe fan-out) and the probes per second achieved;
- CNI: attach (loopback + bridge + host-local ADD) and release (DEL) of one pod namespace.
Loopback and namespaces this script creates only; bounded to well under two minutes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from pykubelet.host.netns import socket_in_netns
from pykubelet.network import CniNetwork, SandboxNetworkRef, default_conflist
from pykubelet.podspec.actions import HttpGetAction, ProbeTarget, TcpSocketAction, run_handler
from pykubelet.runtime import ExecResult


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


class _NoExec:
    async def exec_sync(
        self, container_id: str, cmd: object, timeout_s: float | None = None
    ) -> ExecResult:
        raise NotImplementedError


async def _serve(netns_path: str) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    sock = socket_in_netns(netns_path, socket.AF_INET)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    server = await asyncio.start_server(handle, sock=sock, backlog=1024)
    return server, int(sock.getsockname()[1])


async def _time(fn: Callable[[], Awaitable[object]], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _row(name: str, samples_ms: list[float]) -> None:
    p50 = statistics.median(samples_ms)
    p99 = sorted(samples_ms)[int(len(samples_ms) * 0.99) - 1]
    print(f"{name:<44} {p50:>9.2f} {p99:>9.2f}")


async def _probe_rows(netns_path: str, label: str) -> None:
    server, port = await _serve(netns_path)
    target = ProbeTarget(container_id="c", netns_path=netns_path)
    runner = _NoExec()
    async with server:
        for action, name in (
            (HttpGetAction(port=port), "httpGet"),
            (TcpSocketAction(port=port), "tcpSocket"),
        ):
            samples = await _time(
                functools.partial(run_handler, action, target, runner, timeout_s=5), 200
            )
            _row(f"{name} probe, {label}", samples)
        for n in (100, 500):
            t = time.perf_counter()
            results = await asyncio.gather(
                *(
                    run_handler(HttpGetAction(port=port), target, runner, timeout_s=10)
                    for _ in range(n)
                )
            )
            took = time.perf_counter() - t
            ok = sum(r.result.value == "successful" for r in results)
            print(
                f"{f'{n} httpGet probes at once, {label}':<44} {took * 1000:>9.1f} ms total, "
                f"{n / took:>7.0f} probes/s, {ok}/{n} ok"
            )


async def _cni_rows(tmp: Path) -> None:
    token = secrets.token_hex(3)
    third = 100 + secrets.randbelow(150)
    conf = default_conflist(
        bridge=f"pkb{token}", subnet=f"10.88.{third}.0/24", data_dir=str(tmp / "ipam")
    )
    cni = CniNetwork(state_dir=str(tmp / "state"), conf_dir="", default=conf)
    attach, release = [], []
    try:
        for i in range(20):
            name = f"pkb-{token}-{i}"
            _ip("netns", "add", name)
            try:
                ref = SandboxNetworkRef(
                    sandbox_id=f"s{i}",
                    netns_path=f"/run/netns/{name}",
                    namespace="b",
                    name="b",
                    uid=str(i),
                )
                t = time.perf_counter()
                await cni.attach(ref)
                attach.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await cni.teardown(f"s{i}")
                release.append((time.perf_counter() - t) * 1000)
            finally:
                _ip("netns", "del", name, check=False)
    finally:
        _ip("link", "del", f"pkb{token}", check=False)
    _row("CNI attach (loopback + bridge/host-local)", attach)
    _row("CNI release (DEL, reverse order)", release)


async def main() -> None:
    print(f"{'operation':<44} {'p50 ms':>9} {'p99 ms':>9}")
    await _probe_rows("", "host netns")
    if os.geteuid() != 0:
        print("(not root: namespace and CNI rows skipped)")
        return
    name = f"pkb-{secrets.token_hex(4)}"
    _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")
    try:
        await _probe_rows(f"/run/netns/{name}", "pod netns")
    finally:
        _ip("netns", "del", name, check=False)
    with tempfile.TemporaryDirectory(prefix="pkb-") as tmp:
        await _cni_rows(Path(tmp))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

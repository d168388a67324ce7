"""Benchmark kubectl through a real kube-apiserver v1.20.2 to pykubelet.

* ``kubectl exec <pod> -c main -- true`` round trip (the built kubectl v1.20.2, SPDY), N runs one
  after the other: wall time per run, and pykubelet's share (the exec request's duration in its
  request log, from arrival to the exit status sent);
* ``kubectl port-forward`` throughput to a TCP echo server in the pod (bytes sent and echoed
  back, per second).

A private control plane (etcd, kube-apiserver) on free loopback ports and one pykubelet are
started and stopped by this script (needs root, Debian's etcd-server and busybox-static, the
built v1.20.2 binaries). The upstream kubelet is not measured here (it needs containerd and
its own node; see docs/performance.md).

    .venv/bin/python bench/bench_apiserver.py [--runs 200] [--mbytes 64]
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.apiserver.controlplane import UPSTREAM_BIN, ControlPlane  # noqa: E402
from tests.apiserver.podnode import ECHO_PORT, MIRROR, node_with_pod  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _exec_runs(kubectl: str, admin: Path, runs: int) -> list[float]:
    argv = [kubectl, f"--kubeconfig={admin}", "exec", MIRROR, "-c", "main", "--", "true"]
    subprocess.run(argv, check=True, capture_output=True)  # warm-up (connections, caches)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _kubelet_share(log: str, runs: int) -> list[float]:
    """durationMs of the last ``runs`` exec requests in the agent's JSON request log."""
    out = []
    for line in log.splitlines():
        i = line.find("{")
        if i < 0 or '"path":"/exec/' not in line:
            continue
        try:
            out.append(float(json.loads(line[i:])["durationMs"]))
        except (ValueError, KeyError):
            continue
    return out[-runs:]


def _port_forward(kubectl: str, admin: Path, mbytes: int) -> float:
    proc = subprocess.Popen(
        [kubectl, f"--kubeconfig={admin}", "port-forward", f"pod/{MIRROR}", f":{ECHO_PORT}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        m = re.search(rb"127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert m, "kubectl port-forward did not start"
        total = mbytes << 20
        chunk = b"x" * (1 << 16)
        with socket.create_connection(("127.0.0.1", int(m[1])), timeout=60) as s:
            received = 0

            def reader() -> None:
                nonlocal received
                while received < total and (data := s.recv(1 << 16)):
                    received += len(data)

            t0 = time.perf_counter()
            th = threading.Thread(target=reader)
            th.start()
            for _ in range(total // len(chunk)):
                s.sendall(chunk)
            th.join()
            elapsed = time.perf_counter() - t0
        assert received == total, (received, total)
        return mbytes / elapsed
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--mbytes", type=int, default=64)
    a = ap.parse_args()
    kubectl = str(UPSTREAM_BIN / "kubectl")
    with tempfile.TemporaryDirectory(prefix="bench-apiserver-") as d:
        cp = ControlPlane(Path(d) / "cp")
        try:
            cp.start()
            with node_with_pod(cp, Path(d)) as (node, admin):
                times = _exec_runs(kubectl, admin, a.runs)
                share = _kubelet_share(node.log(), a.runs)
                mbps = _port_forward(kubectl, admin, a.mbytes)
        finally:
            cp.stop()
    print(f"kubectl v1.20.2 -> kube-apiserver v1.20.2 -> pykubelet, {a.runs} runs")
    print(f"{'measure':<44} {'p50':>9} {'p99':>9} {'mean':>9}")
    for name, vals in (
        ("kubectl exec -- true, wall (ms)", times),
        ("pykubelet's share of it (ms)", share),
    ):
        print(
            f"{name:<44} {_pct(vals, 0.5):>9.1f} {_pct(vals, 0.99):>9.1f} "
            f"{statistics.mean(vals):>9.1f}"
        )
    print(f"{'kubectl port-forward echo, ' + str(a.mbytes) + ' MiB (MiB/s)':<44} {mbps:>9.1f}")


if __name__ == "__main__":
    main()

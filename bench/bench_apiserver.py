"""Benchmark kubectl through a real kube-apiserver v1.20.2: pykubelet vs the upstream kubelet.

* ``kubectl exec <pod> -c main -- true`` round trip (the built kubectl v1.20.2, SPDY): N runs
  per node, in alternating blocks (pykubelet, upstream, pykubelet, ...) so that a change in the
  machine's load hits both alike. Per node: wall time per run, the node side's CPU per exec
  (the kubelet process with the children it reaped; for upstream also containerd and its
  shims, whose reaped children are the ``runc exec`` calls), and for pykubelet its share (the
  exec request's duration in its request log, minus the time it waited on the client: for
  kubectl to create its streams through the API server, and to hang up at the end) and the
  authentication + authorization part of it (``authMs``);
* two pods: first the bench pod as ``tests/apiserver/podnode.py`` makes it, with a container
  that crashes every 5 s and is restarted (normal node life: the restarts share the agent's
  event loop with the execs), then the same pod without that container (a quiet pod, like the
  upstream node's); ``--no-quiet`` skips the second;
* two CPU layouts per pod (``--layouts``): ``shared``, everything on all the machine's CPUs,
  and ``split``, the node being measured (pykubelet with its helpers and containers; the
  upstream kubelet with containerd, its shims and containers) alone on the last CPU and the
  control plane, kubectl and the other node on the others (``cpu_split.py``; re-pinned at
  each block), as on a real cluster where the API server and kubectl are other machines. On
  a 2-core machine the shared layout's tail is mostly the node's steps waiting for a core
  that kube-apiserver or kubectl holds;
* ``kubectl port-forward`` throughput to a TCP echo server in each pod (bytes sent and echoed
  back, per second).

What the share leaves out: the TLS handshake of each exec's new connection (the API server
opens one per exec and never resumes a session) and the parse of the request's headers,
which happen before the request log's clock starts; they are in "node CPU per exec".

A private control plane (etcd, kube-apiserver) on free loopback ports, one pykubelet (process
runtime) and, with ``--upstream-dir``, the upstream kubelet v1.20.2 on containerd as a second
node (``bench/upstream_node.py``) are started and stopped by this script. Needs root, Debian's
etcd-server, containerd and busybox-static, and a work dir set up by
``scripts/upstream-k8s/setup.sh`` (binaries, images).

    UPSTREAM_K8S_DIR=/some/dir UPSTREAM_K8S_GOCACHE=/var/cache/pykubelet/upstream-k8s/gocache \
        scripts/upstream-k8s/setup.sh
    .venv/bin/python bench/bench_apiserver.py [--runs 200] [--mbytes 64] [--upstream-dir /some/dir]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cpu_split import all_cpus, pin, split_cpus  # noqa: E402
from upstream_node import UPSTREAM_POD, node_procs, upstream_node  # noqa: E402

from tests.apiserver.controlplane import UPSTREAM_BIN, ApiError, ControlPlane  # noqa: E402
from tests.apiserver.kubelet import ClusterNode  # noqa: E402
from tests.apiserver.podnode import ECHO_PORT, MIRROR, POD, node_with_pod  # noqa: E402
from tests.e2e.node import wait_for  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _exec_runs(kubectl: str, admin: Path, pod: str, runs: int) -> list[float]:
    argv = [kubectl, f"--kubeconfig={admin}", "exec", pod, "-c", "main", "--", "true"]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(argv, capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"kubectl exec exited {r.returncode}: {r.stderr.decode()!r}")
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _exec_records(log: str, runs: int) -> list[dict[str, object]]:
    """The last ``runs`` exec requests of pykubelet's JSON request log."""
    out = []
    for line in log.splitlines():
        i = line.find("{")
        if i < 0 or '"path":"/exec/' not in line:
            continue
        with contextlib.suppress(ValueError):
            out.append(json.loads(line[i:]))
    return out[-runs:]


_AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  resources: [{group: "", resources: [pods/exec]}]
- level: None
"""


def _audit_args(d: Path) -> tuple[str, ...]:
    """kube-apiserver flags for an audit log of the execs alone (``_api_exec_ms``)."""
    (d / "audit-policy.yaml").write_text(_AUDIT_POLICY)
    return (f"--audit-policy-file={d / 'audit-policy.yaml'}", f"--audit-log-path={d / 'audit.log'}")


def _micro(ts: str) -> float:
    """An audit MicroTime (RFC 3339 with microseconds) in seconds."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _api_exec_ms(audit: Path, pod: str, runs: int) -> list[float]:
    """The last ``runs`` execs of ``pod`` as kube-apiserver saw them: from the request
    received to the exec's end (its ResponseComplete audit event), in ms. The same execs as
    the wall time, without kubectl's start-up and exit (~60 ms that swamp the nodes'
    difference), and the same measure for both nodes."""
    out = []
    for line in audit.read_text().splitlines():
        ev = json.loads(line)
        ref = ev.get("objectRef") or {}
        if ev.get("stage") == "ResponseComplete" and ref.get("subresource") == "exec":
            if ref.get("name") == pod:
                received = _micro(ev["requestReceivedTimestamp"])
                out.append((_micro(ev["stageTimestamp"]) - received) * 1000)
    return out[-runs:]


def _share(rec: dict[str, object]) -> float:
    """pykubelet's own time in one exec request: its duration (from the request's headers
    parsed to the handler's end) minus its waits on the client (``peerWaitMs``: kubectl
    creating its streams through the API server, and hanging up at the end)."""
    return float(rec["durationMs"]) - float(rec.get("peerWaitMs", 0.0))  # type: ignore[arg-type]


def _port_forward(kubectl: str, admin: Path, pod: str, mbytes: int) -> float:
    proc = subprocess.Popen(
        [kubectl, f"--kubeconfig={admin}", "port-forward", f"pod/{pod}", f":{ECHO_PORT}"],
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


def _with_zygote(pid: int) -> list[int]:
    """``pid`` and its helper zygote (which reaps the helpers it forks: its children's CPU is
    in its own cutime/cstime, not the agent's)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[1:2] == [b"zygote"]:
                    pids.append(int(child))
    return pids


def _cpu_s(pids: list[int]) -> float:
    """utime + stime of ``pids`` and of the children they reaped, in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    name: str
    pod: str
    pids: Callable[[], list[int]]  # the node side, for its CPU time and the CPU layout
    wall: list[float] = field(default_factory=list)
    api_ms: list[float] = field(default_factory=list)  # the same execs, kube-apiserver's view
    cpu_s: float = 0.0
    mbps: float = 0.0

    def reset(self) -> None:
        self.wall, self.api_ms, self.cpu_s = [], [], 0.0


def _measure(
    kubectl: str,
    admin: Path,
    targets: list[Target],
    runs: int,
    blocks: int,
    lay_out: Callable[[Target | None], None],
) -> None:
    """``runs`` execs per target in ``blocks`` alternating blocks; ``lay_out(t)`` before each
    block pins the processes for measuring ``t``."""
    for t in targets:
        lay_out(t)
        _exec_runs(kubectl, admin, t.pod, 1)  # warm-up (connections, caches)
    for _ in range(blocks):
        for t in targets:
            lay_out(t)
            pids = t.pids()
            before = _cpu_s(pids)
            t.wall += _exec_runs(kubectl, admin, t.pod, runs // blocks)
            t.cpu_s += _cpu_s(pids) - before


def _quiet_pod(cp: ControlPlane, node: ClusterNode) -> None:
    """Replace the bench pod by the same pod without its ``crasher`` (the last container in
    the manifest), and wait until the agent runs the new one and its mirror pod in the API
    server is the new one too: the agent replaces the mirror (delete, then create), and a
    ``kubectl exec`` that looks the pod up in between gets NotFound."""
    path = node.pods / f"{POD}.yaml"
    text = path.read_text()
    node.write_pod(POD, text[: text.index("  - name: crasher")])

    def ready() -> bool:
        main = node.container(POD, "main") or {}
        return node.container(POD, "crasher") is None and "running" in main.get("state", {})

    def mirrored() -> bool:
        try:
            spec = cp.request("GET", f"/api/v1/namespaces/default/pods/{MIRROR}")["spec"]
        except ApiError:
            return False
        return [c["name"] for c in spec["containers"]] == ["main", "echo", "logger", "term"]

    wait_for(ready, 60, "the bench pod without its crasher")
    wait_for(mirrored, 60, "the mirror pod without the crasher")


_LAYOUT_TITLES = {
    "shared": "shared by all",
    "split": "split: the node on its own CPU, control plane and kubectl on the others",
}


def _lay_out(layout: str, cp: ControlPlane, targets: list[Target], measured: Target | None) -> None:
    """Pin for ``layout`` while ``measured`` is measured: split gives that node the last CPU
    alone, and the control plane, this process (so the kubectl it starts) and the other node
    the others; shared (or ``measured`` None) gives everyone every CPU."""
    split = split_cpus() if layout == "split" and measured is not None else None
    rest, node_cpus = (split[1], split[0]) if split else (all_cpus(), all_cpus())
    pin([p.pid for p in cp.procs.values()], rest)
    os.sched_setaffinity(0, rest)  # this thread only: the kubectl it starts inherits it
    for t in targets:
        if t is not measured:
            pin(t.pids(), rest)
    if measured is not None:
        pin(measured.pids(), node_cpus)


def _print_phase(title: str, targets: list[Target], recs: list[dict[str, object]]) -> None:
    print(f"-- {title}")
    rows: list[tuple[str, list[float]]] = []
    for t in targets:
        rows.append((f"{t.name}: kubectl exec -- true, wall (ms)", t.wall))
        rows.append((f"{t.name}: the exec seen by kube-apiserver (ms)", t.api_ms))
        if t is targets[0]:
            rows.append((f"{t.name}: its own share of it (ms)", [_share(r) for r in recs]))
            auth = [float(r["authMs"]) for r in recs]  # type: ignore[arg-type]
            rows.append((f"{t.name}: of which authn+authz (ms)", auth))
    for name, vals in rows:
        print(
            f"{name:<52} {_pct(vals, 0.5):>9.1f} {_pct(vals, 0.99):>9.1f} "
            f"{statistics.mean(vals):>9.1f}"
        )
    for t in targets:
        print(f"{t.name + ': node CPU per exec (ms)':<52} {t.cpu_s * 1000 / len(t.wall):>9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200, help="execs per node and phase")
    ap.add_argument("--blocks", type=int, default=4, help="alternating blocks per node")
    ap.add_argument("--mbytes", type=int, default=64)
    ap.add_argument(
        "--upstream-dir",
        default=os.environ.get("UPSTREAM_K8S_DIR", ""),
        help="an upstream-k8s work dir (setup.sh done): also measure the upstream kubelet",
    )
    ap.add_argument(
        "--no-quiet", action="store_true", help="skip the second phase (pod without its crasher)"
    )
    ap.add_argument("--save-log", default="", help="copy pykubelet's log here (request lines)")
    ap.add_argument(
        "--layouts",
        default="shared,split",
        help="CPU layouts to measure in, in order: shared (all CPUs for all) and/or split "
        "(the node on the last CPU, the rest on the others)",
    )
    a = ap.parse_args()
    layouts = [x for x in a.layouts.split(",") if x]
    if any(x not in ("shared", "split") for x in layouts) or not layouts:
        ap.error(f"--layouts: expected shared and/or split, got {a.layouts!r}")
    if "split" in layouts and split_cpus() is None:
        print("one CPU only: the split layout is skipped", file=sys.stderr)
        layouts = [x for x in layouts if x != "split"] or ["shared"]
    kubectl = str(UPSTREAM_BIN / "kubectl")
    load_before = os.getloadavg()
    phases: list[tuple[str, list[Target], list[dict[str, object]]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-apiserver-") as d, contextlib.ExitStack() as st:
        cp = ControlPlane(Path(d) / "cp", apiserver_args=_audit_args(Path(d)))
        st.callback(cp.stop)
        cp.start()
        node, admin = st.enter_context(node_with_pod(cp, Path(d)))
        assert node.proc is not None
        ours = Target("pykubelet", MIRROR, lambda: _with_zygote(node.proc.pid))  # type: ignore[union-attr]
        targets = [ours]
        if a.upstream_dir:
            work = Path(a.upstream_dir)
            kpid = st.enter_context(upstream_node(cp, work, Path(d) / "upstream", ECHO_PORT))
            sock = work / "run" / "containerd.sock"
            targets.append(Target("upstream kubelet", UPSTREAM_POD, lambda: node_procs(kpid, sock)))
        pods = ["bench pod with a container crashing every 5 s (restarted by pykubelet)"]
        if not a.no_quiet:
            pods.append("quiet bench pod (the crasher removed; the upstream pod has none)")
        st.callback(_lay_out, "shared", cp, targets, None)
        if a.save_log:
            st.callback(lambda: Path(a.save_log).write_text(node.log()))
        for i, pod in enumerate(pods):
            if i:
                _quiet_pod(cp, node)
            for layout in layouts:
                for t in targets:
                    t.reset()
                _measure(
                    kubectl,
                    admin,
                    targets,
                    a.runs,
                    a.blocks,
                    partial(_lay_out, layout, cp, targets),
                )
                recs = _exec_records(node.log(), len(ours.wall))
                for t in targets:
                    t.api_ms = _api_exec_ms(Path(d) / "audit.log", t.pod, len(t.wall))
                title = f"{pod}; CPUs {_LAYOUT_TITLES[layout]}"
                phases.append((title, [dataclasses.replace(t) for t in targets], recs))
        _lay_out("shared", cp, targets, None)
        for t in targets:
            t.mbps = _port_forward(kubectl, admin, t.pod, a.mbytes)
    load_after = os.getloadavg()
    print(
        f"kubectl v1.20.2 -> kube-apiserver v1.20.2 -> node, {a.runs} runs per node and phase "
        f"in {a.blocks} alternating blocks; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after"
    )
    print(f"{'measure':<52} {'p50':>9} {'p99':>9} {'mean':>9}")
    for title, snapshot, recs in phases:
        _print_phase(title, snapshot, recs)
    print("-- port-forward")
    for t in targets:
        label = f"{t.name}: port-forward echo, {a.mbytes} MiB (MiB/s)"
        print(f"{label:<52} {t.mbps:>9.1f}")


if __name__ == "__main__":
    main()

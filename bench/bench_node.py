"""Benchmark node mode: N pods bound to the node through kube-apiserver v1.20.2 until the API
server reports every one Running; then the idle node's CPU (heartbeats included).

The reference control plane must be running (``scripts/upstream-k8s/start.sh controlplane``
in ``$PYKUBELET_UPSTREAM_DIR``, default /var/cache/pykubelet/upstream-k8s); the agent runs as
a separate ``pykubelet run`` process with the stack's node identity, the process runtime and
the stack's busybox image. Pods are created with ``spec.nodeName`` set (no scheduler in the
measured path) by the admin client in this process; "Running" is read from a watch on the
API server. Agent CPU and RSS come from /proc; the API requests the agent made from its own
count, logged when it stops. Bounded: a few minutes. Root only.

    .venv/bin/python bench/bench_node.py [--pods 110] [--idle 30]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

UPSTREAM = Path(os.environ.get("PYKUBELET_UPSTREAM_DIR", "/var/cache/pykubelet/upstream-k8s"))
IMAGE = "localhost/busybox:1.35"
TICK = os.sysconf("SC_CLK_TCK")


def kubectl(*args: str, stdin: str | None = None) -> str:
    r = subprocess.run(
        [str(UPSTREAM / "bin" / "kubectl"), "--kubeconfig", str(UPSTREAM / "admin.kubeconfig"),
         *args],
        input=stdin, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if r.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {r.stderr}")
    return r.stdout


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else 0.0


def start_agent(base: Path, node: str) -> subprocess.Popen[bytes]:
    pki = UPSTREAM / "pki"
    root = base / "root"
    subprocess.run(
        [sys.executable, "-m", "pykubelet.cli", "images", "import", "--root-dir", str(root),
         str(UPSTREAM / "image" / "busybox.tar")],
        check=True, capture_output=True,
    )  # fmt: skip
    log = (base / "agent.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable, "-m", "pykubelet.cli", "run",
            "--kubeconfig", str(UPSTREAM / "kubelet.kubeconfig"),
            "--node-name", node, "--root-dir", str(root),
            "--address", "127.0.0.1", "--port", "0", "--healthz-port", "0",
            "--cgroup-root", base.name,
            "--tls-cert-file", str(pki / "kubelet-serving.crt"),
            "--tls-private-key-file", str(pki / "kubelet-serving.key"),
            "--client-ca-file", str(pki / "ca.crt"),
            "--authorization-mode", "AlwaysAllow", "--authentication-token-webhook=false",
            "--cni-conf-dir", str(base / "no-cni"),
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


class _Pid:
    """The upstream kubelet, started by start.sh: its pid from the pid file."""

    def __init__(self, pid: int) -> None:
        self.pid = pid


def _stack(script: str, *args: str) -> None:
    env = {**os.environ, "UPSTREAM_K8S_DIR": str(UPSTREAM)}
    subprocess.run([str(ROOT / "scripts" / "upstream-k8s" / script), *args], env=env,
                   check=True, capture_output=True, timeout=300)  # fmt: skip


def start_upstream() -> Any:
    _stack("start.sh", "cluster")  # adds containerd and the kubelet to the running control plane
    return _Pid(int((UPSTREAM / "run" / "kubelet.pid").read_text()))


def stop_upstream() -> None:
    _stack("stop.sh")  # by pid files: the kubelet, its containers, containerd, the control plane
    _stack("start.sh", "controlplane")


def wait_ready(node: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(
            [str(UPSTREAM / "bin" / "kubectl"), "--kubeconfig", str(UPSTREAM / "admin.kubeconfig"),
             "get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"],
            capture_output=True, text=True,
        )  # fmt: skip
        if r.stdout.strip() == "True":
            return
        time.sleep(0.5)
    raise SystemExit("the node did not become Ready")


def watch_running(ns: str, want: int, done: threading.Event, out: dict[str, float]) -> None:
    """Follow the pods of ``ns`` with a kubectl watch; record when ``want`` are Running."""
    proc = subprocess.Popen(
        [str(UPSTREAM / "bin" / "kubectl"), "--kubeconfig", str(UPSTREAM / "admin.kubeconfig"),
         "get", "pods", "-n", ns, "--watch", "-o", "json", "--output-watch-events"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    running: set[str] = set()
    buf = ""
    depth = 0
    for line in proc.stdout:
        buf += line
        depth += line.count("{") - line.count("}")
        if depth != 0 or not buf.strip():
            continue
        event = json.loads(buf)
        buf = ""
        obj = event.get("object") or {}
        if (obj.get("status") or {}).get("phase") == "Running":
            running.add(obj["metadata"]["name"])
        if len(running) >= want:
            out["all_running"] = time.monotonic()
            break
    proc.terminate()
    proc.wait()
    done.set()


def pod(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}],
        },
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pods", type=int, default=110)
    p.add_argument("--idle", type=float, default=30.0, help="seconds of idle measurement")
    p.add_argument(
        "--upstream",
        action="store_true",
        help="measure the upstream kubelet v1.20.2 on containerd instead (start.sh cluster; "
        "the control plane is restarted afterwards)",
    )
    a = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("root only (namespaces, cgroups)")
    if not (UPSTREAM / "run" / "kube-apiserver.pid").exists():
        raise SystemExit(f"start the control plane first: scripts/upstream-k8s/start.sh "
                         f"controlplane (UPSTREAM_K8S_DIR={UPSTREAM})")  # fmt: skip
    node = (UPSTREAM / "node-name").read_text().strip()
    base = Path(tempfile.mkdtemp(prefix=f"pkbn{secrets.token_hex(3)}"))
    ns = f"bench-{secrets.token_hex(3)}"
    kubectl("delete", "node", node, "--ignore-not-found")
    agent = start_upstream() if a.upstream else start_agent(base, node)
    try:
        wait_ready(node)
        time.sleep(3)  # registration settles
        idle0, t_idle0 = cpu_s(agent.pid), time.monotonic()
        time.sleep(a.idle)
        idle_pct = 100 * (cpu_s(agent.pid) - idle0) / (time.monotonic() - t_idle0)
        kubectl("create", "namespace", ns)
        done = threading.Event()
        out: dict[str, float] = {}
        watcher = threading.Thread(target=watch_running, args=(ns, a.pods, done, out), daemon=True)
        watcher.start()
        time.sleep(1)  # the watch is open
        manifests = json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [pod(f"p{i}", node) for i in range(a.pods)],
            }
        )
        cpu0, t0 = cpu_s(agent.pid), time.monotonic()
        kubectl("create", "-n", ns, "-f", "-", stdin=manifests)
        created = time.monotonic() - t0
        if not done.wait(600):
            raise SystemExit("not all pods Running after 600 s")
        took = out["all_running"] - t0
        busy_cpu = cpu_s(agent.pid) - cpu0
        rss = rss_mib(agent.pid)
        kubectl("delete", "namespace", ns, "--wait=false")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            left = kubectl("get", "pods", "-n", ns, "-o", "name", "--ignore-not-found")
            if not left.strip():
                break
            time.sleep(1)
    finally:
        if a.upstream:
            stop_upstream()
        else:
            agent.send_signal(signal.SIGTERM)
            agent.wait(60)
        kubectl("delete", "node", node, "--ignore-not-found", "--wait=false")
        kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false")
    log = "" if a.upstream else (base / "agent.log").read_text()
    m = re.search(r"API requests made: (.*)", log)
    requests = m.group(1) if m else "?"
    print(
        "| pods | created (kubectl) | all Running in the API | agent CPU | agent RSS | idle CPU |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {a.pods} | {created:.2f} s | **{took:.2f} s** | {busy_cpu:.2f} CPU-s | {rss:.0f} MiB "
        f"| {idle_pct:.2f} % of a core |"
    )
    print(f"\nAPI requests by the agent over the whole run (incl. deleting them): {requests}")
    _cleanup(base)


def _cleanup(base: Path) -> None:
    """Kill whatever the agent left in its cgroup root (deleted pods are stopped by then)."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        d = hierarchy / base.name
        if not d.is_dir():
            continue
        for dirpath, _dirs, _files in os.walk(d):
            try:
                for pid in Path(dirpath, "cgroup.procs").read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        time.sleep(0.5)
        for dirpath, _dirs, _files in sorted(os.walk(d), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

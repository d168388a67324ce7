"""The upstream kubelet v1.20.2 on containerd as a second node of a benchmark's control plane.

Uses a work dir made by ``scripts/upstream-k8s/setup.sh`` (binaries, containerd config, images)
but none of its start/stop scripts: those stop whatever runs in the shared ``/upstream-k8s``
cgroup root, so they could hit the reference stack. Here containerd and the kubelet are
started as children and stopped by pid, the kubelet's cgroup root is its own
(``/pykubelet-bench-upstream``), and its ports are ephemeral.

The node is named ``127.0.0.1``: kubelet 1.20 refuses a loopback ``--node-ip`` but takes an IP
given as ``--hostname-override`` as the node's InternalIP, so the API server (which dials
InternalIP first) reaches it on loopback and verifies its serving certificate (SAN 127.0.0.1).

kubelet 1.20's container GC deletes every ``/var/log/pods`` entry of a pod it does not know, so
it would delete other kubelets' (and other tests') pod logs on this machine. It runs in a mount
namespace of its own with private, empty ``/var/log/pods`` and ``/var/log/containers``
(containerd still writes the container logs to the real paths; they are removed afterwards).
The pod has no volumes, so no mount of the kubelet's needs to reach containerd.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from devtools.private_pod_logs import with_private_pod_logs
from pykubelet.security.certs import create_serving_cert
from tests.apiserver.controlplane import ApiError, ControlPlane, wait_until
from tests.apiserver.kubelet import node_credentials
from tests.conftest import free_port

__all__ = ["UPSTREAM_NODE", "UPSTREAM_POD", "node_procs", "upstream_node"]

UPSTREAM_NODE = "127.0.0.1"
UPSTREAM_POD = "bench-upstream"
_CGROUP_ROOT = "pykubelet-bench-upstream"


def _cgroup_dirs() -> list[Path]:
    return [
        Path(h) / _CGROUP_ROOT
        for h in Path("/sys/fs/cgroup").glob("*/")
        if (h / "cgroup.procs").is_file()
    ]


def _make_cgroup_root() -> None:
    for d in _cgroup_dirs():
        d.mkdir(exist_ok=True)
        parent = d.parent
        if (parent / "cpuset.cpus").is_file():  # cgroup v1 cpuset: a new child starts empty
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not (d / f).read_text().strip():
                    (d / f).write_text((parent / f).read_text())


def _remove_cgroup_root() -> None:
    for d in _cgroup_dirs():
        if not d.is_dir():
            continue
        for sub in sorted(d.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if sub.is_dir():
                for pid in (sub / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), 9)
                with contextlib.suppress(OSError):
                    sub.rmdir()
        with contextlib.suppress(OSError):
            d.rmdir()


def _shim_pids(sock: Path) -> list[int]:
    """containerd-shim processes of this containerd (their command line names its socket)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and os.fsencode(sock) in argv:
            out.append(int(p.name))
    return out


def node_procs(kubelet: int, sock: Path) -> list[int]:
    """The node side of an exec: the kubelet, containerd and the shims (whose reaped children,
    runc, count in their cumulative CPU)."""
    ctrd = [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _is_containerd(p, sock)
    ]
    return [kubelet, *ctrd, *_shim_pids(sock)]


def _is_containerd(p: Path, sock: Path) -> bool:
    try:
        argv = (p / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return argv[0] == b"/usr/bin/containerd" and any(
        os.fsencode(sock.parent.parent) in a for a in argv
    )


def _stop(proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pod(name: str, echo_port: int) -> dict[str, object]:
    def c(cname: str, cmd: list[str]) -> dict[str, object]:
        return {
            "name": cname,
            "image": "localhost/busybox:1.35",
            "imagePullPolicy": "Never",
            "command": cmd,
        }

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": UPSTREAM_NODE,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                c("main", ["sleep", "3600"]),
                c("echo", ["nc", "-ll", "-p", str(echo_port), "-e", "cat"]),
            ],
        },
    }


@contextlib.contextmanager
def upstream_node(cp: ControlPlane, work: Path, base: Path, echo_port: int) -> Iterator[int]:
    """containerd + kubelet v1.20.2 joined to ``cp`` with one Running pod (``main``, and
    ``echo`` on ``echo_port``); yields the kubelet's pid. Everything is stopped and removed
    afterwards (containers, mounts under ``base``, the cgroup root, the pod's log dir)."""
    base.mkdir(parents=True)
    sock = work / "run" / "containerd.sock"
    logs = base / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen[bytes]] = []

    def launch(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (logs / f"{name}.log").open("ab") as log:
            p = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        procs.append(p)
        return p

    ctr = ["ctr", "-a", str(sock), "-n", "k8s.io"]
    root = base / "kubelet"
    try:
        if sock.exists():
            raise RuntimeError(f"{sock} exists: is that work dir's containerd running?")
        launch(
            "containerd", ["/usr/bin/containerd", "--config", str(work / "containerd/config.toml")]
        )
        wait_until(
            lambda: subprocess.run([*ctr, "version"], capture_output=True).returncode == 0,
            30,
            "containerd",
        )
        images = subprocess.run([*ctr, "images", "ls", "-q"], capture_output=True, text=True).stdout
        for name in ("busybox", "pause"):
            if f"localhost/{name}:" not in images:
                subprocess.run(
                    [*ctr, "images", "import", str(work / f"image/{name}.tar")],
                    check=True,
                    capture_output=True,
                )
        _make_cgroup_root()
        serving = create_serving_cert(str(base / "serving"), UPSTREAM_NODE, ca=cp.ca)
        kc = node_credentials(cp, base, node=UPSTREAM_NODE)
        port, healthz = free_port(), free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": "127.0.0.1",
            "port": port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": healthz,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{_CGROUP_ROOT}",
            "failSwapOn": False,
            "makeIPTablesUtilChains": False,
            "resolvConf": "/etc/resolv.conf",
            "tlsCertFile": serving.cert_file,
            "tlsPrivateKeyFile": serving.key_file,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": cp.ca.cert_file},
            },
            "authorization": {"mode": "Webhook"},
        }
        (base / "kubelet-config.json").write_text(json.dumps(config))
        kubelet = launch(
            "kubelet",
            with_private_pod_logs(
                base,
                [
                    str(work / "bin/kubelet"),
                    f"--config={base / 'kubelet-config.json'}",
                    f"--kubeconfig={kc}",
                    "--container-runtime=remote",
                    f"--container-runtime-endpoint=unix://{sock}",
                    "--pod-infra-container-image=localhost/pause:3.4",
                    f"--root-dir={root}",
                    f"--cert-dir={base / 'pki'}",
                    f"--hostname-override={UPSTREAM_NODE}",
                    "--v=1",
                ],
            ),
        )
        wait_until(lambda: _node_exists(cp), 90, "the upstream kubelet's Node")
        cp.create("/api/v1/namespaces/default/pods", _pod(UPSTREAM_POD, echo_port))
        wait_until(
            lambda: _pod_running(cp),
            120,
            "the upstream kubelet's pod Running",
        )
        assert kubelet.poll() is None
        yield kubelet.pid
    finally:
        with contextlib.suppress(ApiError, OSError):
            cp.delete(f"/api/v1/namespaces/default/pods/{UPSTREAM_POD}?gracePeriodSeconds=0")
        if sock.exists():
            # the kubelet may be gone: stop the pod's containers through containerd itself
            for t in subprocess.run(
                [*ctr, "tasks", "ls", "-q"], capture_output=True, text=True
            ).stdout.split():
                subprocess.run(
                    [*ctr, "tasks", "kill", "-a", "-s", "SIGKILL", t], capture_output=True
                )
            time.sleep(1)
            for t in subprocess.run(
                [*ctr, "tasks", "ls", "-q"], capture_output=True, text=True
            ).stdout.split():
                subprocess.run([*ctr, "tasks", "delete", "-f", t], capture_output=True)
        shims = _shim_pids(sock)
        for p in reversed(procs):
            _stop(p)
        for pid in shims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        with contextlib.suppress(ApiError, OSError):
            cp.delete(f"/api/v1/nodes/{UPSTREAM_NODE}")
        _unmount_under(base)
        _unmount_under(work / "containerd")
        _unmount_under(work / "run")
        _remove_cgroup_root()
        for d in Path("/var/log/pods").glob(f"default_{UPSTREAM_POD}_*"):
            shutil.rmtree(d, ignore_errors=True)
        for link in Path("/var/log/containers").glob(f"{UPSTREAM_POD}_default_*"):
            link.unlink(missing_ok=True)


def _node_exists(cp: ControlPlane) -> bool:
    try:
        cp.request("GET", f"/api/v1/nodes/{UPSTREAM_NODE}")
    except ApiError:
        return False
    return True


def _pod_running(cp: ControlPlane) -> bool:
    pod = cp.request("GET", f"/api/v1/namespaces/default/pods/{UPSTREAM_POD}")
    statuses = pod.get("status", {}).get("containerStatuses", [])
    return pod.get("status", {}).get("phase") == "Running" and all(s.get("ready") for s in statuses)


def _unmount_under(path: Path) -> None:
    """Unmount what the kubelet and containerd left below ``path`` (deepest first)."""
    prefix = str(path.resolve()) + "/"
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp.startswith(prefix):
                points.append(mp)
    for mp in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)

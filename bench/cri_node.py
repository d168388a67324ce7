"""A private containerd with static pods, for the benches that run an agent on it
(``bench_cri.py``, ``bench_api.py --front``): the daemon, the agents as child processes (the
Go kubelet v1.20.2 among them), the pod manifests, and the clean-up.

Everything is started as a child and stopped by pid; ports are ephemeral on 127.0.0.1; the Go
kubelet's cgroup root is its own (``<containerd's cgroup parent>-kubelet``, never
``/upstream-k8s``). kubelet 1.20's container GC deletes every ``/var/log/pods`` entry of a pod
it does not know, which would delete other kubelets' (and other tests') pod logs on this
machine: as in ``upstream_node.py``, it runs in a mount namespace of its own with private,
empty ``/var/log/pods`` and ``/var/log/containers``. containerd still writes the containers'
logs to the real ``/var/log/pods``; the entries of this bench's pods are removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from devtools.busybox_image import build_busybox_image, build_pause_image
from devtools.containerd import BUSYBOX_REF, PAUSE_REF, Containerd
from devtools.private_pod_logs import with_private_pod_logs
from pykubelet.runtime import ContainerState
from pykubelet.runtime.cri import CriRuntime

POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: bench-{i}, namespace: default}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: sleep
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"""
# <namespace>_<name>_<uid> of the pods above as static pods of node "bench-node"
_POD_LOG_DIR = re.compile(r"default_bench-\d+-bench-node_[0-9a-f]{32}")
_POD_LOGS = Path("/var/log/pods")
TICKS = os.sysconf("SC_CLK_TCK")
UPSTREAM_BIN = Path(os.environ.get("UPSTREAM_K8S_DIR", "/var/cache/pykubelet/upstream-k8s")) / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def upstream_missing() -> str:
    """Why the Go kubelet cannot run here ("" when it can)."""
    if os.geteuid() != 0:
        return "not root (containerd and the Go kubelet need it)"
    if not (UPSTREAM_BIN / "kubelet").exists():
        return f"{UPSTREAM_BIN / 'kubelet'} is missing (scripts/upstream-k8s/setup.sh builds it)"
    for prog in ("containerd", "unshare"):
        if shutil.which(prog) is None:
            return f"{prog} is missing: run scripts/install-system-deps.sh"
    return ""


@dataclass
class Agent:
    name: str
    argv: list[str]
    port: int = 0  # the kubelet API's (10250's) port, when the bench knows it
    proc: subprocess.Popen[bytes] | None = None

    def start(self, log: Path) -> None:
        with log.open("ab") as f:
            self.proc = subprocess.Popen(
                self.argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # should it have been paused
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def kubelet_cgroup_root(c: Containerd) -> str:
    return f"{c.cgroup_parent}-kubelet"


def kubelet_agent(
    work: Path, c: Containerd, manifests: Path, bin_dir: Path = UPSTREAM_BIN
) -> Agent:
    """The Go kubelet, standalone (no API server) with the flags of ``start.sh standalone``:
    anonymous authentication, ``AlwaysAllow``, static pods from ``manifests``."""
    root = kubelet_cgroup_root(c)
    for h in Path("/sys/fs/cgroup").iterdir():  # as start.sh: the cgroup root must exist
        if not (h / "cgroup.procs").exists():
            continue
        d = h / root
        d.mkdir(exist_ok=True)
        if (h / "cpuset.cpus").exists():
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not (d / f).read_text().strip():
                    (d / f).write_text((h / f).read_text())
    port = free_port()
    config = work / "kubelet-config.yaml"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "kubelet.config.k8s.io/v1beta1",
                "kind": "KubeletConfiguration",
                "address": "127.0.0.1",
                "port": port,
                "readOnlyPort": 0,
                "healthzBindAddress": "127.0.0.1",
                "healthzPort": free_port(),
                "cgroupDriver": "cgroupfs",
                "cgroupRoot": f"/{root}",
                "failSwapOn": False,
                "staticPodPath": str(manifests),
                "makeIPTablesUtilChains": False,
                "resolvConf": "/etc/resolv.conf",
                "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
                "authorization": {"mode": "AlwaysAllow"},
            }
        )
    )
    return Agent(
        "kubelet v1.20.2",
        with_private_pod_logs(
            work / "kubelet-logs",
            [
                str(bin_dir / "kubelet"),
                f"--config={config}",
                "--container-runtime=remote",
                f"--container-runtime-endpoint=unix://{c.socket}",
                f"--pod-infra-container-image={PAUSE_REF}",
                f"--root-dir={work / 'kubelet'}",
                f"--cert-dir={work / 'kubelet' / 'pki'}",
                "--hostname-override=bench-node",
                "--v=1",
            ],
        ),
        port=port,
    )


def remove_cgroup_tree(name: str) -> None:
    """The Go kubelet's cgroup root (its QoS and pod cgroups): what still runs in it is
    killed (a container can outlive its shim), then the directories are removed."""
    for h in Path("/sys/fs/cgroup").iterdir():
        d = h / name
        if not d.is_dir():
            continue
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                for pid in (sub / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            d.rmdir()


def unmount_under(root: Path) -> None:
    prefix = str(root) + "/"
    for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
        target = line.split()[4]
        if target.startswith(prefix):
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def write_manifests(manifests: Path, n: int) -> None:
    for i in range(n):
        (manifests / f"bench-{i}.yaml").write_text(POD.format(i=i, image=BUSYBOX_REF))


def remove_manifests(manifests: Path) -> None:
    for f in manifests.iterdir():
        f.unlink()


async def running(rt: CriRuntime) -> int:
    return sum(
        1
        for x in await rt.list_containers()
        if x.state is ContainerState.RUNNING and x.name == "sleep"
    )


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def clear(rt: CriRuntime, manifests: Path) -> None:
    remove_manifests(manifests)

    async def empty() -> bool:
        return not await rt.list_pod_sandboxes()

    if not await wait_until(empty, 120):  # the agent did not remove them: do it ourselves
        await remove_all(rt)


async def remove_all(rt: CriRuntime) -> None:
    for sb in await rt.list_pod_sandboxes():
        await rt.stop_pod_sandbox(sb.id)
        await rt.remove_pod_sandbox(sb.id)


def _pod_log_dirs() -> set[str]:
    return {p.name for p in _POD_LOGS.iterdir()} if _POD_LOGS.is_dir() else set()


@contextlib.asynccontextmanager
async def containerd_node(work: Path) -> AsyncIterator[tuple[Containerd, CriRuntime]]:
    """A private containerd under ``work`` with the pause and busybox images, and a CRI client
    of it. Afterwards (stop the agents first): every sandbox, the daemon and what it left,
    the Go kubelet's cgroup root, mounts under ``work``, this bench's pods' entries in
    ``/var/log/pods`` and ``work`` itself."""
    logs_before = _pod_log_dirs()
    c = Containerd(work / "containerd").start()
    rt = CriRuntime(f"unix://{c.socket}")
    try:
        c.import_image(build_pause_image(work / "pause.tar", PAUSE_REF))
        c.import_image(build_busybox_image(work / "busybox.tar", BUSYBOX_REF))
        await rt.start()
        yield c, rt
    finally:
        with contextlib.suppress(Exception):
            await remove_all(rt)
        await rt.aclose()
        c.stop()
        remove_cgroup_tree(kubelet_cgroup_root(c))
        unmount_under(work)  # the Go kubelet bind-mounts its root dir onto itself
        for name in _pod_log_dirs() - logs_before:
            if _POD_LOG_DIR.fullmatch(name):
                shutil.rmtree(_POD_LOGS / name, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

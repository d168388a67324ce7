"""A private containerd (Debian's 1.6) for tests and benchmarks: own root, state, socket, CNI.

No systemd and no registry: the daemon is started by pid, the sandbox (pause) and busybox images
are imported with ``ctr``, and ``stop()`` removes every trace (pods' shims, mounts, the pods'
cgroup parent, the CNI bridge) even after a failed test. Settings follow
``scripts/upstream-k8s/setup.sh``, which works on this machine (cgroupfs, runc,
``restrict_oom_score_adj``: root here may lack CAP_SYS_RESOURCE).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtools.busybox_image import build_busybox_image, build_pause_image
from pykubelet.core.errors import Unavailable

__all__ = ["BUSYBOX_REF", "PAUSE_REF", "Containerd"]

PAUSE_REF = "localhost/pause:3.4"
BUSYBOX_REF = "docker.io/library/busybox:latest"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CNI_BIN_DIR = "/usr/lib/cni"


def _config(d: Path, socket: str, cni_conf_dir: Path) -> str:
    return f"""version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_REF}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "{d}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni_conf_dir}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{d}/certs.d"
"""


def _cni_conflist(d: Path, bridge: str, subnet: str, gateway: str) -> dict[str, object]:
    return {
        "cniVersion": "0.4.0",
        "name": bridge,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(d / "ipam"),
                    "ranges": [[{"subnet": subnet, "gateway": gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "loopback"},
            # host ports: containerd passes the pods' port mappings (snat: 127.0.0.1 works)
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


@dataclass
class Containerd:
    """One private daemon under ``workdir``; pods should use ``cgroup_parent`` as cgroup root."""

    workdir: Path
    socket: str = ""
    cgroup_parent: str = ""
    bridge: str = ""
    pid: int = 0
    images: tuple[str, ...] = ()
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, *, timeout_s: float = 30.0) -> Containerd:
        for prog in ("containerd", "ctr", "runc", "containerd-shim-runc-v2"):
            if shutil.which(prog) is None and not Path(f"/usr/sbin/{prog}").exists():
                raise Unavailable(f"{prog} is missing: run scripts/install-system-deps.sh")
        tag = secrets.token_hex(3)
        d = self.workdir
        d.mkdir(parents=True, exist_ok=True)
        # a short path: unix socket names are limited to 108 bytes
        self.socket = self.socket or f"/run/pykubelet-cri-{tag}.sock"
        self.cgroup_parent = self.cgroup_parent or f"pykubelet-cri-{tag}"
        self.bridge = self.bridge or f"pkcri{tag}"
        net = 240 + int(tag[:2], 16) % 15  # 10.<240..254>.<x>.0/24: away from other test nets
        third = int(tag[2:4], 16)
        cni_dir = d / "cni"
        cni_dir.mkdir(exist_ok=True)
        (cni_dir / "10-pykubelet-test.conflist").write_text(
            json.dumps(
                _cni_conflist(d, self.bridge, f"10.{net}.{third}.0/24", f"10.{net}.{third}.1")
            )
        )
        (d / "config.toml").write_text(_config(d, self.socket, cni_dir))
        log = (d / "containerd.log").open("ab")
        self._proc = subprocess.Popen(
            ["containerd", "--config", str(d / "config.toml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.pid = self._proc.pid
        deadline = time.monotonic() + timeout_s
        while not Path(self.socket).exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise Unavailable(f"containerd did not start; see {d / 'containerd.log'}")
            time.sleep(0.05)
        self._wait_cri_ready(deadline)
        return self

    def _wait_cri_ready(self, deadline: float) -> None:
        """The CRI plugin registers a moment after the socket appears."""
        while True:
            r = self.ctr("plugins", "ls", check=False)
            if r.returncode == 0 and _cri_ok(r.stdout):
                return
            if time.monotonic() > deadline:
                raise Unavailable(f"containerd's CRI plugin is not ready: {r.stdout}{r.stderr}")
            time.sleep(0.1)

    def restart(self, *, timeout_s: float = 30.0) -> None:
        """Stop the daemon alone (SIGTERM, by pid) and start it again on the same state: the
        shims and containers keep running, as with a containerd upgrade."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            self._proc.wait(timeout=15)
        with contextlib.suppress(OSError):
            Path(self.socket).unlink()
        log = (self.workdir / "containerd.log").open("ab")
        self._proc = subprocess.Popen(
            ["containerd", "--config", str(self.workdir / "config.toml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.pid = self._proc.pid
        deadline = time.monotonic() + timeout_s
        while not Path(self.socket).exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise Unavailable(f"containerd did not restart; see {self.workdir}/containerd.log")
            time.sleep(0.05)
        self._wait_cri_ready(deadline)

    def trust_registry(self, host: str, ca_file: str) -> None:
        """Trust ``ca_file`` for pulls from ``host`` (containerd's own registry configuration,
        ``certs.d/<host>/hosts.toml``, read at every pull)."""
        d = self.workdir / "certs.d" / host
        d.mkdir(parents=True, exist_ok=True)
        (d / "hosts.toml").write_text(
            f'server = "https://{host}"\n\n[host."https://{host}"]\n  ca = "{ca_file}"\n'
        )

    def plain_http_registry(self, host: str) -> None:
        """Pull from ``host`` over plain HTTP (a test registry on loopback)."""
        d = self.workdir / "certs.d" / host
        d.mkdir(parents=True, exist_ok=True)
        (d / "hosts.toml").write_text(
            f'server = "http://{host}"\n\n[host."http://{host}"]\n  skip_verify = true\n'
        )

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", self.socket, "--namespace", "k8s.io", *args],
            capture_output=True,
            text=True,
            check=check,
        )

    def import_image(self, tarball: Path) -> None:
        self.ctr("images", "import", "--no-unpack", str(tarball))

    def import_test_images(self, cache_dir: Path) -> None:
        """The pause and busybox images, built once into ``cache_dir``."""
        pause = cache_dir / "pause.tar"
        busybox = cache_dir / "busybox.tar"
        if not pause.exists():
            build_pause_image(pause, PAUSE_REF)
        if not busybox.exists():
            build_busybox_image(busybox, BUSYBOX_REF)
        self.import_image(pause)
        self.import_image(busybox)
        self.images = (PAUSE_REF, BUSYBOX_REF)

    # ----- clean-up -----

    def stop(self) -> None:
        """Stop the daemon (by pid), then whatever it left: shims, mounts, cgroups, bridge."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for pid in self._shim_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._kill_pod_processes()
        self._unmount_under(self.workdir)
        self._remove_cgroups()
        self._remove_port_mappings()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
        with contextlib.suppress(OSError):
            Path(self.socket).unlink()
        with contextlib.suppress(OSError):
            Path(self.socket + ".ttrpc").unlink()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _remove_port_mappings(self) -> None:
        """portmap's per-sandbox nat chains of this daemon's network (their rules name the
        network), should a pod outlive the daemon; the shared chains are the session's."""
        rules = subprocess.run(
            ["iptables", "-w", "5", "-t", "nat", "-S"], capture_output=True, text=True
        ).stdout.splitlines()
        mine = f'dnat name: \\"{self.bridge}\\"'
        chains = set()
        for rule in rules:
            parts = shlex.split(rule)
            if parts[:2] == ["-A", "CNI-HOSTPORT-DNAT"] and mine in rule:
                chains.add(parts[-1])
                subprocess.run(["iptables", "-w", "5", "-t", "nat", "-D", *parts[1:]], check=False)
        for chain in chains:
            for flag in ("-F", "-X"):
                subprocess.run(["iptables", "-w", "5", "-t", "nat", flag, chain], check=False)

    def _shim_pids(self) -> list[int]:
        """Shims started by this daemon: their command line names our socket."""
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            ours = self.socket.encode() in argv
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and ours:
                found.append(int(proc.name))
        return found

    def _kill_pod_processes(self) -> None:
        """Containers outlive their shim: kill what is still in the pods' cgroups."""
        for _ in range(50):
            pids = {
                int(p)
                for tasks in (CGROUP_ROOT / "pids" / self.cgroup_parent).rglob("cgroup.procs")
                for p in _read_lines(tasks)
            }
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    def _unmount_under(self, root: Path) -> None:
        prefix = str(root.resolve()) + "/"
        mounts = [
            line.split()[4]
            for line in _read_lines(Path("/proc/self/mountinfo"))
            if line.split()[4].startswith(prefix)
        ]
        for target in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)

    def _remove_cgroups(self) -> None:
        for hierarchy in CGROUP_ROOT.iterdir():
            top = hierarchy / self.cgroup_parent
            if not top.is_dir():
                continue
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()


def _cri_ok(listing: str) -> bool:
    for line in listing.splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[0] == "io.containerd.grpc.v1" and cols[1] == "cri":
            return cols[-1] == "ok"
    return False


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []

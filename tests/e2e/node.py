"""A real ``pykubelet run`` subprocess on loopback, with real certificates, read over HTTPS.

Every node gets its own root dir, manifest dir, ports, cgroup root and CNI bridge and subnet
(with random tokens), and everything it started is cleaned up by pid, by cgroup and by
interface name, even when a test fails.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.containerd import Containerd
from pykubelet.network import DEFAULT_BRIDGE, CniNetwork, PortMapper, default_conflist
from pykubelet.podspec.volumes import PodVolumes
from pykubelet.security.certs import CertPair, create_ca, create_client_cert, create_serving_cert
from tests.conftest import free_port

NODE = "e2e-node"
CNI_BIN = "/usr/lib/cni"


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def wait_for(cond: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    """Poll ``cond`` until it returns something truthy, at most ``timeout_s`` seconds (a
    deadline for a condition, not a timed assertion)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


@dataclass
class Node:
    base: Path
    image_tar: Path
    cgroup_root: str = field(default_factory=lambda: f"pykubelet-e2e-{secrets.token_hex(4)}")
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    log_file: Path | None = None
    runs: int = 0
    extra_args: list[str] = field(default_factory=list)  # more `pykubelet run` flags
    bridge: str = field(default_factory=lambda: f"pke{secrets.token_hex(3)}")
    # False: no CNI config at all, so the agent uses its built-in network (bridge pykbr0)
    cni: bool = True
    # how `pykubelet` is run: this checkout by default, or an installed entry point
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "pykubelet.cli"])
    # the CRI runtime: pods on this private containerd (its own CNI network and cgroup parent)
    containerd: Containerd | None = None

    def __post_init__(self) -> None:
        self.root = self.base / "root"
        self.pods = self.base / "pods"
        self.pki = self.base / "pki"
        self.pods.mkdir(parents=True, exist_ok=True)
        ca = create_ca(str(self.pki))
        self.serving = create_serving_cert(str(self.pki), NODE, ca=ca)
        self.client = create_client_cert(str(self.pki), "tester", ["system:masters"], ca=ca)
        self.ca = ca
        self.port = free_port()
        # A CNI network of this node's own, so nodes never share a bridge or addresses; a test
        # may still point --cni-conf-dir elsewhere (later flags win).
        self.cni_conf_dir = self.base / "e2e-net.d"
        self.cni_conf_dir.mkdir(exist_ok=True)
        subnet = f"10.88.{100 + secrets.randbelow(150)}.0/24"
        conf = default_conflist(
            bridge=self.bridge, subnet=subnet, data_dir=str(self.base / "cni-networks")
        )
        (self.cni_conf_dir / "10-e2e.conflist").write_text(json.dumps(conf.to_json()))
        # the default bridge is removed afterwards only if this node's test created it
        self._default_bridge_existed = _link_exists(DEFAULT_BRIDGE)

    # ----- process -----

    def start(self, wait: bool = True) -> None:
        """Start the agent; ``wait``: until it serves ``/pods``."""
        self.runs += 1
        self.log_file = self.base / f"agent-{self.runs}.log"
        log = self.log_file.open("wb")
        self.proc = subprocess.Popen(
            [
                *self.command,
                "run",
                "--root-dir",
                str(self.root),
                "--pod-manifest-path",
                str(self.pods),
                "--node-name",
                NODE,
                "--address",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--healthz-port",
                "0",
                "--cgroup-root",
                self.cgroup_root,
                "--tls-cert-file",
                self.serving.cert_file,
                "--tls-private-key-file",
                self.serving.key_file,
                "--client-ca-file",
                self.ca.cert_file,
                "--authorization-mode",
                "AlwaysAllow",
                "--authentication-token-webhook=false",
                "--cert-dir",
                str(self.pki),
                "--cni-conf-dir",
                str(self.cni_conf_dir if self.cni else self.base / "no-cni-conf"),
                *self.runtime_args(),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if wait:
            wait_for(self._listening, 20, "the agent to serve /pods")

    def runtime_args(self) -> list[str]:
        """The flags that select this node's runtime (also for ``pykubelet images``)."""
        if self.containerd is None:
            return []
        return ["--container-runtime-endpoint", f"unix://{self.containerd.socket}"]

    @property
    def scheme(self) -> str:
        """How container ids start in pod status: ``<scheme>://<id>``."""
        return "pykubelet" if self.containerd is None else "containerd"

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.log()}")
        try:
            self.get("/pods")
            return True
        except OSError:
            return False

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        self.proc = None

    # ----- API -----

    def get(self, path: str) -> Any:
        return json.loads(self.get_text(path))

    def get_text(self, path: str) -> str:
        return self.get_bytes(path).decode()

    def get_bytes(self, path: str) -> bytes:
        """The exact body of a GET as the admin client; anything but 200 fails the test."""
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.tls_context(), timeout=10
        )
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise AssertionError(f"GET {path}: {resp.status} {body[:300]!r}")
        return body

    def tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca.cert_file)
        ctx.load_cert_chain(self.client.cert_file, self.client.key_file)
        return ctx

    def pod(self, name: str) -> dict[str, Any] | None:
        for item in self.get("/pods")["items"] or []:
            if item["metadata"]["name"] == f"{name}-{NODE}":
                return item  # type: ignore[no-any-return]
        return None

    def container(self, pod: str, name: str) -> dict[str, Any] | None:
        p = self.pod(pod)
        if p is None:
            return None
        st = p.get("status", {})
        for c in (*st.get("containerStatuses", []), *st.get("initContainerStatuses", [])):
            if c["name"] == name:
                return c  # type: ignore[no-any-return]
        return None

    def write_pod(self, name: str, text: str) -> Path:
        """Write a manifest. No registry is reachable here, and ``busybox`` (no tag) defaults
        to imagePullPolicy Always, which containerd honours by pulling: the imported image is
        used instead (IfNotPresent) unless the manifest names a policy."""
        if "imagePullPolicy" not in text:
            text = text.replace("image: busybox,", "image: busybox, imagePullPolicy: IfNotPresent,")
            text = re.sub(
                r"^(\s*)image: busybox$",
                r"\1image: busybox\n\1imagePullPolicy: IfNotPresent",
                text,
                flags=re.M,
            )
        path = self.pods / f"{name}.yaml"
        tmp = self.pods / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, path)
        return path

    def log_dir(self, pod: dict[str, Any]) -> Path:
        md = pod["metadata"]
        return self.root / "logs" / "pods" / f"{md['namespace']}_{md['name']}_{md['uid']}"

    # ----- cleanup -----

    def cleanup(self) -> None:
        """Remove every pod through the agent when it runs, then kill by cgroup whatever is
        left (a failed test must not leave processes, cgroups or mounts behind)."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                for f in self.pods.iterdir():
                    f.unlink()
                wait_for(lambda: not (self.get("/pods")["items"] or []), 60, "pods removed")
                wait_for(lambda: not list(self._cgroup_pids()), 60, "containers stopped")
        except AssertionError:
            pass
        finally:
            self.stop(signal.SIGKILL)
            for pid in self._cgroup_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            # a killed process leaves its cgroup only once it is reaped: wait (bounded) for it
            deadline = time.monotonic() + 10
            while any(True for _ in self._cgroup_pids()) and time.monotonic() < deadline:
                time.sleep(0.05)
            self._remove_cgroups()
            self._release_networks()
            self._remove_volumes()
            bridges = [self.bridge]
            if not self._default_bridge_existed:
                bridges.append(DEFAULT_BRIDGE)
            for name in bridges:
                subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)

    def _release_networks(self) -> None:
        """CNI DEL (and portmap DEL) for whatever a killed agent left recorded, so a failed
        test leaves no addresses or iptables rules behind."""

        async def release() -> None:
            cni = CniNetwork(state_dir=str(self.root / "cni"), conf_dir="", bin_dir=CNI_BIN)
            await cni.cleanup_leftovers(set())
            await PortMapper(
                state_dir=str(self.root / "network" / "portmap"), bin_dir=CNI_BIN
            ).cleanup_leftovers(set())

        asyncio.run(release())

    def _remove_volumes(self) -> None:
        """Unmount (the tmpfs of memory, secret, projected and downward API volumes) and remove
        the volumes a killed agent left behind, as its own pod teardown would."""
        volumes = PodVolumes(str(self.root / "pods"))

        async def remove() -> None:
            for uid in volumes.pod_uids():
                await volumes.cleanup(uid)

        asyncio.run(remove())

    def _cgroup_dirs(self) -> Iterator[Path]:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields_ = line.split()
            fstype = line.split(" - ", 1)[-1].split()[0]
            if fstype in ("cgroup", "cgroup2"):
                d = Path(fields_[4]) / self.cgroup_root
                if d.is_dir():
                    yield d

    def _cgroup_pids(self) -> Iterator[int]:
        seen: set[int] = set()
        for d in self._cgroup_dirs():
            for dirpath, _dirs, _files in os.walk(d):  # tolerates cgroups vanishing meanwhile
                try:
                    pids = [int(x) for x in Path(dirpath, "cgroup.procs").read_text().split()]
                except OSError:
                    continue
                for pid in pids:
                    if pid not in seen:
                        seen.add(pid)
                        yield pid

    def _remove_cgroups(self) -> None:
        for d in self._cgroup_dirs():
            for dirpath, _dirs, _files in sorted(os.walk(d), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass


__all__ = ["NODE", "CertPair", "Node", "wait_for"]

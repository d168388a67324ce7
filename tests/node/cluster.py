"""The reference control plane (kube-apiserver, etcd, kube-scheduler, kube-controller-manager
v1.20.2, built by scripts/upstream-k8s.sh) and a pykubelet node joined to it.

The node uses the stack's node identity: ``kubelet.kubeconfig`` (client cert CN
``system:node:<node>``, O ``system:nodes``, signed by the stack's CA, so the Node authorizer
and NodeRestriction apply) and ``pki/kubelet-serving.*`` (SAN ``<node>``, signed by that CA:
the API server dials the node by name and verifies it). The node name is the stack's
(``node-name``), which setup.sh made resolve to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pykubelet.security.certs import CertPair
from tests.e2e.node import Node, wait_for

UPSTREAM_DIR = Path(os.environ.get("PYKUBELET_UPSTREAM_DIR", "/var/cache/pykubelet/upstream-k8s"))
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "upstream-k8s"
IMAGE = "localhost/busybox:1.35"  # the stack's image tarball, imported into each node


@dataclass
class ControlPlane:
    dir: Path
    started_here: bool = False
    kubectl_bin: Path = field(init=False)

    def __post_init__(self) -> None:
        self.kubectl_bin = self.dir / "bin" / "kubectl"

    @property
    def node_name(self) -> str:
        return (self.dir / "node-name").read_text().strip()

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "UPSTREAM_K8S_DIR": str(self.dir)}

    def running(self) -> bool:
        pid = self.dir / "run" / "kube-apiserver.pid"
        try:
            os.kill(int(pid.read_text()), 0)
            return True
        except (OSError, ValueError):
            return False

    def start(self) -> None:
        # the node lifecycle controller gives up on a silent node after 20 s instead of 40 s
        # (a test kills the agent and waits for Ready=Unknown); leases renew every 10 s
        kcm = "--node-monitor-grace-period=20s --node-monitor-period=2s"
        r = subprocess.run(
            [str(SCRIPTS / "start.sh"), "controlplane"],
            env={**self.env, "KCM_EXTRA_ARGS": kcm},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert r.returncode == 0, f"start.sh controlplane failed:\n{r.stdout}\n{r.stderr}"

    def stop(self) -> None:
        subprocess.run([str(SCRIPTS / "stop.sh")], env=self.env, capture_output=True, timeout=180)

    def kubectl(self, *args: str, check: bool = True, binary: str | None = None) -> str:
        r = subprocess.run(
            [
                binary or str(self.kubectl_bin),
                "--kubeconfig",
                str(self.dir / "admin.kubeconfig"),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def get(self, *args: str) -> Any:
        """``kubectl get ... -o json``; None when not found."""
        r = subprocess.run(
            [
                str(self.kubectl_bin),
                "--kubeconfig",
                str(self.dir / "admin.kubeconfig"),
                "get",
                *args,
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if r.returncode != 0:
            if "NotFound" in r.stderr or "not found" in r.stderr:
                return None
            raise AssertionError(f"kubectl get {' '.join(args)}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def apply(self, manifest: dict[str, Any] | str, namespace: str = "") -> None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        args = [str(self.kubectl_bin), "--kubeconfig", str(self.dir / "admin.kubeconfig")]
        if namespace:
            args += ["-n", namespace]
        r = subprocess.run(
            [*args, "apply", "-f", "-"], input=text, capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stderr

    def node(self) -> Any:
        return self.get("node", self.node_name)

    def delete_node(self) -> None:
        self.kubectl("delete", "node", self.node_name, "--ignore-not-found", "--wait=false")
        self.kubectl(
            "delete", "lease", "-n", "kube-node-lease", self.node_name, "--ignore-not-found"
        )


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return c  # type: ignore[no-any-return]
    return None


class ApiNode(Node):
    """A pykubelet node joined to ``ControlPlane``: the e2e ``Node`` (own root dir, cgroup
    root, CNI bridge, clean-up by pid, cgroup and interface) with the stack's identity."""

    def __init__(self, base: Path, image_tar: Path, cp: ControlPlane, *args: str) -> None:
        super().__init__(base=base, image_tar=image_tar)
        pki = cp.dir / "pki"
        self.cp = cp
        self.ca = CertPair(cert_file=str(pki / "ca.crt"), key_file=str(pki / "ca.key"))
        self.client = CertPair(cert_file=str(pki / "admin.crt"), key_file=str(pki / "admin.key"))
        self.extra_args = [
            "--kubeconfig",
            str(cp.dir / "kubelet.kubeconfig"),
            "--node-name",
            cp.node_name,
            "--tls-cert-file",
            str(pki / "kubelet-serving.crt"),
            "--tls-private-key-file",
            str(pki / "kubelet-serving.key"),
            "--client-ca-file",
            str(pki / "ca.crt"),
            *args,
        ]
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pykubelet.cli",
                "images",
                "import",
                "--root-dir",
                str(self.root),
                str(image_tar),
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr


def namespace_name() -> str:
    return f"t-{secrets.token_hex(4)}"


def wait_api(cond: Any, timeout_s: float, what: str) -> Any:
    """``wait_for`` at a pace the API server and kubectl can take (kubectl costs ~50 ms)."""
    return wait_for(cond, timeout_s, what, interval_s=0.3)


__all__ = [
    "IMAGE",
    "ApiNode",
    "ControlPlane",
    "condition",
    "namespace_name",
    "wait_api",
    "wait_for",
]

"""A ``pykubelet run`` subprocess wired to the private control plane, and a raw HTTPS client
for its kubelet API (bearer token or client certificate)."""

from __future__ import annotations

import http.client
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from pykubelet.security.certs import CertPair, create_cert
from tests.apiserver.controlplane import ControlPlane, kubeconfig
from tests.e2e.node import NODE, Node

__all__ = ["NODE", "Answer", "ClusterNode", "KubeletClient", "node_credentials", "start_kubelet"]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    elapsed_s: float


@dataclass
class KubeletClient:
    port: int
    server_ca: str

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str = "",
        cert: CertPair | None = None,
        timeout_s: float = 60,
    ) -> Answer:
        ctx = ssl.create_default_context(cafile=self.server_ca)
        if cert is not None:
            ctx.load_cert_chain(cert.cert_file, cert.key_file)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.monotonic()
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=timeout_s)
        try:
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        return Answer(resp.status, body, time.monotonic() - started)


def node_credentials(cp: ControlPlane, directory: Path, node: str = NODE) -> Path:
    """A kubeconfig for ``system:node:<node>`` (client certificate from the cluster CA)."""
    cert = create_cert(
        str(directory),
        "node-client",
        ca=cp.ca,
        common_name=f"system:node:{node}",
        organizations=["system:nodes"],
        client=True,
    )
    return kubeconfig(
        directory / "kubelet.kubeconfig", server=cp.server, ca_file=cp.ca.cert_file, cert=cert
    )


@dataclass
class ClusterNode(Node):
    """The e2e node harness, probing as the API server does (its kubelet client certificate).
    ``verify_server`` false: the serving certificate is not checked (a serving certificate
    still to be signed by the cluster is a self-signed placeholder)."""

    verify_server: bool = True

    def tls_context(self) -> ssl.SSLContext:
        ctx = super().tls_context()
        if not self.verify_server:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def start_kubelet(
    cp: ControlPlane, base: Path, *extra: str, verify_server: bool = True
) -> ClusterNode:
    """pykubelet trusting the cluster CA for clients; ``extra`` flags go last (they win)."""
    node = ClusterNode(
        base=base, image_tar=Path("/nonexistent"), cni=False, verify_server=verify_server
    )
    node.client = cp.kubelet_client
    # the Node's InternalIP is the loopback the agent listens on (the API server dials it)
    node.extra_args = ["--client-ca-file", cp.ca.cert_file, "--node-ip", "127.0.0.1", *extra]
    node.start()
    return node

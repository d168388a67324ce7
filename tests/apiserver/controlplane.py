"""A private Kubernetes v1.20.2 control plane for tests: etcd, kube-apiserver and (on demand)
kube-controller-manager, on free loopback ports, with a throw-away PKI.

Binaries: kube-apiserver and kube-controller-manager from the reference build
(``$UPSTREAM_K8S_BIN`` or ``/var/cache/pykubelet/upstream-k8s/bin``), etcd from Debian's
``etcd-server``. The flags are those of ``scripts/upstream-k8s/start.sh`` (Node,RBAC, bootstrap
tokens, the kubelet client certificate) with ports, paths and signing duration of our own. Never
the shared reference stack: it owns 6443/2379; everything here is started and stopped by pid.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import signal
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pykubelet.security.certs import CertPair, create_ca, create_cert
from tests.conftest import free_port
from tests.e2e.node import wait_for

UPSTREAM_BIN = Path(os.environ.get("UPSTREAM_K8S_BIN", "/var/cache/pykubelet/upstream-k8s/bin"))
ETCD = "/usr/bin/etcd"


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


def wait_until(cond: Any, timeout_s: float, what: str, interval_s: float = 0.2) -> Any:
    """``wait_for`` at the API server's pace."""
    return wait_for(cond, timeout_s, what, interval_s=interval_s)


def kubeconfig(
    path: Path,
    *,
    server: str,
    ca_file: str,
    cert: CertPair | None = None,
    token: str = "",
    user: str = "user",
) -> Path:
    """A kubeconfig with one cluster, one user (client certificate or token), one context."""
    creds: dict[str, str] = {}
    if cert is not None:
        creds = {"client-certificate": cert.cert_file, "client-key": cert.key_file}
    if token:
        creds["token"] = token
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": server, "certificate-authority": ca_file}}
        ],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    """Start with ``start()``; ``stop()`` ends what it started (by pid) and is idempotent."""

    base: Path
    signing_duration: str = "8760h"
    apiserver_args: tuple[str, ...] = ()  # more kube-apiserver flags (a bench's audit log)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pki = self.base / "pki"
        self.logs = self.base / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ca = create_ca(str(self.pki), common_name="test-kubernetes-ca")
        self.serving = create_cert(
            str(self.pki), "apiserver", ca=self.ca, common_name="kube-apiserver", server=True
        )
        self.admin = create_cert(
            str(self.pki),
            "admin",
            ca=self.ca,
            common_name="test-admin",
            organizations=["system:masters"],
            client=True,
        )
        # the API server's identity towards kubelets (kubeadm: O=system:masters)
        self.kubelet_client = create_cert(
            str(self.pki),
            "apiserver-kubelet-client",
            ca=self.ca,
            common_name="kube-apiserver-kubelet-client",
            organizations=["system:masters"],
            client=True,
        )
        self.kcm_client = create_cert(
            str(self.pki),
            "controller-manager",
            ca=self.ca,
            common_name="system:kube-controller-manager",
            client=True,
        )
        key = ec.generate_private_key(ec.SECP256R1())
        self.sa_key = self.pki / "sa.key"
        self.sa_pub = self.pki / "sa.pub"
        self.sa_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        self.sa_pub.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.port = 0
        self.server = ""

    # ----- processes -----

    def _launch(self, name: str, argv: list[str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def _alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"{name} exited {proc.returncode}:\n{tail}")

    def start(self) -> None:
        client, peer = free_port(), free_port()
        self._launch(
            "etcd",
            [
                ETCD,
                "--name=test",
                f"--data-dir={self.base / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=test=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync=true",
            ],
        )
        self.port = free_port()
        self.server = f"https://127.0.0.1:{self.port}"
        self.start_apiserver(etcd=f"http://127.0.0.1:{client}")

    def start_apiserver(self, *, etcd: str = "") -> None:
        self._etcd: str = etcd or self._etcd  # a restart keeps the first start's etcd
        self._launch(
            "kube-apiserver",
            [
                str(UPSTREAM_BIN / "kube-apiserver"),
                f"--etcd-servers={self._etcd}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.port}",
                "--insecure-port=0",
                f"--tls-cert-file={self.serving.cert_file}",
                f"--tls-private-key-file={self.serving.key_file}",
                f"--client-ca-file={self.ca.cert_file}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--disable-admission-plugins=ServiceAccount",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self.sa_pub}",
                f"--service-account-signing-key-file={self.sa_key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--enable-bootstrap-token-auth=true",
                f"--kubelet-client-certificate={self.kubelet_client.cert_file}",
                f"--kubelet-client-key={self.kubelet_client.key_file}",
                f"--kubelet-certificate-authority={self.ca.cert_file}",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                "--v=1",
                *self.apiserver_args,
            ],
        )
        wait_until(self._ready, 90, "kube-apiserver /readyz")

    def _ready(self) -> bool:
        self._alive("kube-apiserver")
        try:
            self.request("GET", "/readyz")
            return True
        except (OSError, ApiError):
            return False

    def stop_apiserver(self) -> None:
        self._stop("kube-apiserver")

    def start_controller_manager(self) -> None:
        kc = kubeconfig(
            self.base / "kcm.kubeconfig",
            server=self.server,
            ca_file=self.ca.cert_file,
            cert=self.kcm_client,
        )
        self._launch(
            "kube-controller-manager",
            [
                str(UPSTREAM_BIN / "kube-controller-manager"),
                f"--kubeconfig={kc}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--port=0",
                "--leader-elect=false",
                f"--service-account-private-key-file={self.sa_key}",
                f"--root-ca-file={self.ca.cert_file}",
                f"--cluster-signing-cert-file={self.ca.cert_file}",
                f"--cluster-signing-key-file={self.ca.key_file}",
                f"--cluster-signing-duration={self.signing_duration}",
                "--use-service-account-credentials=true",
                "--controllers=csrapproving,csrsigning,csrcleaner,bootstrapsigner,tokencleaner,"
                "serviceaccount-token,serviceaccount",
                "--v=1",
            ],
        )
        self._alive("kube-controller-manager")

    def _stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            self._stop(name)

    # ----- the admin's REST client -----

    def ssl_context(self, cert: CertPair | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca.cert_file)
        if cert is not None:
            ctx.load_cert_chain(cert.cert_file, cert.key_file)
        return ctx

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        cert: CertPair | None = None,
        token: str = "",
    ) -> Any:
        """One request as the admin (or ``cert`` / ``token``); the decoded answer."""
        conn = http.client.HTTPSConnection(
            "127.0.0.1",
            self.port,
            timeout=30,
            context=self.ssl_context(None if token else cert or self.admin),
        )
        headers = {"Accept": "application/json", "Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(
                method, path, body=None if body is None else json.dumps(body), headers=headers
            )
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if not 200 <= resp.status < 300:
            raise ApiError(resp.status, data.decode(errors="replace"))
        return json.loads(data) if data.startswith(b"{") else data.decode()

    def create(self, path: str, obj: dict[str, Any]) -> Any:
        return self.request("POST", path, obj)

    def delete(self, path: str) -> None:
        try:
            self.request("DELETE", path)
        except ApiError as e:
            if e.status != 404:
                raise

    # ----- objects tests need -----

    def csrs(self, signer: str) -> list[dict[str, Any]]:
        items = self.request("GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests")
        return [c for c in items["items"] if c["spec"]["signerName"] == signer]

    def approve(self, csr: dict[str, Any]) -> None:
        name = csr["metadata"]["name"]
        csr = self.request("GET", f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}")
        csr.setdefault("status", {}).setdefault("conditions", []).append(
            {"type": "Approved", "status": "True", "reason": "TestApproved", "message": "test"}
        )
        self.request(
            "PUT", f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval", csr
        )

    def node_object(self, name: str, port: int) -> None:
        """A Node reachable at 127.0.0.1:``port`` (made by hand, as node mode would)."""
        try:
            self.create(
                "/api/v1/nodes",
                {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}},
            )
        except ApiError as e:
            if e.status != 409:
                raise
        self.request(
            "PATCH",
            f"/api/v1/nodes/{name}/status",
            {
                "status": {
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                }
            },
            content_type="application/merge-patch+json",
        )

    def service_account_token(self, namespace: str, name: str) -> str:
        """A new ServiceAccount and a token for it (TokenRequest API, 1 h)."""
        self.create(
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        )
        answer = self.create(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600},
            },
        )
        return str(answer["status"]["token"])

    def grant(self, name: str, rules: list[dict[str, Any]], subject: dict[str, str]) -> None:
        """A ClusterRole ``name`` with ``rules`` bound to ``subject``."""
        self.create(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": rules,
            },
        )
        self.bind(name, name, [subject])

    def bind(self, binding: str, role: str, subjects: list[dict[str, str]]) -> None:
        self.create(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": binding},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": subjects,
            },
        )

    def bootstrap_token(self) -> str:
        """A bootstrap token (``<id>.<secret>``) in group ``system:bootstrappers``, allowed to
        create CSRs that the controller-manager auto-approves, as ``kubeadm init`` sets up."""
        token_id, secret = secrets.token_hex(3), secrets.token_hex(8)

        def b64(s: str) -> str:
            return base64.b64encode(s.encode()).decode()

        self.create(
            "/api/v1/namespaces/kube-system/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "bootstrap.kubernetes.io/token",
                "metadata": {"name": f"bootstrap-token-{token_id}"},
                "data": {
                    "token-id": b64(token_id),
                    "token-secret": b64(secret),
                    "usage-bootstrap-authentication": b64("true"),
                    "usage-bootstrap-signing": b64("true"),
                },
            },
        )
        return f"{token_id}.{secret}"

    def allow_tls_bootstrap(self) -> None:
        """kubeadm's bindings: bootstrappers may create CSRs and get them auto-approved;
        nodes get their renewals auto-approved. Idempotent."""
        group = {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io"}
        for binding, role, who in (
            ("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", "system:bootstrappers"),
            (
                "kubeadm:node-autoapprove-bootstrap",
                "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                "system:bootstrappers",
            ),
            (
                "kubeadm:node-autoapprove-certificate-rotation",
                "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                "system:nodes",
            ),
        ):
            try:
                self.bind(binding, role, [{**group, "name": who}])
            except ApiError as e:
                if e.status != 409:
                    raise

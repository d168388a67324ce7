"""TLS bootstrap, client certificate rotation and the serving certificate from CSRs, against a
real kube-apiserver and kube-controller-manager v1.20.2 (CSR approval and signing)."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from tests.apiserver.controlplane import (
    UPSTREAM_BIN,
    ApiError,
    ControlPlane,
    kubeconfig,
    wait_until,
)
from tests.apiserver.kubelet import NODE, node_credentials, start_kubelet
from tests.apiserver.podnode import MIRROR, node_with_pod
from tests.e2e.node import Node
from tests.prereq import require_root

pytestmark = pytest.mark.root

CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    made: list[Node] = []
    try:
        yield made
    finally:
        for n in made:
            n.cleanup()


@pytest.fixture(autouse=True)
def earlier_csrs(controller_manager: ControlPlane) -> Iterator[frozenset[str]]:
    """The CSRs there before the test: never taken for this test's kubelet's (a test that
    failed before approving leaves one pending). The test's own are deleted afterwards, even
    when it fails."""
    cp = controller_manager

    def names() -> set[str]:
        return {c["metadata"]["name"] for s in (CLIENT_SIGNER, SERVING_SIGNER) for c in cp.csrs(s)}

    before = frozenset(names())
    yield before
    for name in names() - before:
        cp.delete(f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}")


def _signed_by(cert: x509.Certificate, ca_file: str) -> bool:
    ca = x509.load_pem_x509_certificate(Path(ca_file).read_bytes())
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _pem_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_tls_bootstrap_then_reuse_then_rotation(
    controller_manager: ControlPlane, tmp_path: Path, nodes: list[Node]
) -> None:
    require_root()
    cp = controller_manager
    token = cp.bootstrap_token()
    bootstrap = kubeconfig(
        tmp_path / "bootstrap.kubeconfig", server=cp.server, ca_file=cp.ca.cert_file, token=token
    )
    cert_dir = tmp_path / "kubelet-pki"
    kc = tmp_path / "kubelet.kubeconfig"
    flags = (
        "--bootstrap-kubeconfig",
        str(bootstrap),
        "--kubeconfig",
        str(kc),
        "--cert-dir",
        str(cert_dir),
        "--rotate-certificates",
        "--authorization-mode",
        "Webhook",  # the harness's probe is authorized with the bootstrapped credentials
    )
    node = start_kubelet(cp, tmp_path / "n1", *flags)
    nodes.append(node)

    # the CSR: posted with the bootstrap token, for system:node:<name>, approved and signed
    token_id = token.split(".")[0]
    by_token = [
        c for c in cp.csrs(CLIENT_SIGNER) if c["spec"]["username"] == f"system:bootstrap:{token_id}"
    ]
    assert len(by_token) == 1, by_token
    csr = x509.load_pem_x509_csr(base64.b64decode(by_token[0]["spec"]["request"]))
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"system:node:{NODE}"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    assert [c["type"] for c in by_token[0]["status"]["conditions"]] == ["Approved"]

    current = cert_dir / "kubelet-client-current.pem"
    assert current.is_symlink()
    first = current.resolve()
    assert first.name.startswith("kubelet-client-2")
    assert _mode(first) == 0o600 and _mode(kc) == 0o600
    cert = _pem_cert(current)
    assert _signed_by(cert, cp.ca.cert_file)
    assert cert.subject.rfc4514_string() == f"CN=system:node:{NODE},O=system:nodes"
    written = yaml.safe_load(kc.read_text())
    assert written["users"][0]["user"]["client-certificate"] == str(current)
    assert written["clusters"][0]["cluster"]["server"] == cp.server

    # the next start reuses the kubeconfig: no second bootstrap CSR
    node.stop()
    node.start()
    by_token_after = [
        c for c in cp.csrs(CLIENT_SIGNER) if c["spec"]["username"] == f"system:bootstrap:{token_id}"
    ]
    assert len(by_token_after) == 1

    # rotation before expiry (deadline at 70-90 % of the lifetime), renewed as the node itself
    def rotated() -> bool:
        return current.resolve() != first

    wait_until(rotated, 240, "the client certificate to rotate", interval_s=1)
    new = _pem_cert(current)
    assert new.serial_number != cert.serial_number
    assert new.not_valid_after_utc > cert.not_valid_after_utc
    assert _signed_by(new, cp.ca.cert_file)
    renewals = [c for c in cp.csrs(CLIENT_SIGNER) if c["spec"]["username"] == f"system:node:{NODE}"]
    assert renewals and all(
        [c["type"] for c in r["status"]["conditions"]] == ["Approved"] for r in renewals
    )
    # the agent kept running; a decision not cached yet is asked with the new certificate
    assert node.proc is not None and node.proc.poll() is None
    assert "node" in node.get("/stats/summary")
    # neither the bootstrap token nor a private key ever reached the agent's logs
    for log in sorted(node.base.glob("agent-*.log")):
        text = log.read_text(errors="replace")
        assert token.split(".")[1] not in text, log
        assert "PRIVATE KEY" not in text, log
        assert "TLS bootstrap" in text or "reusing" in text or log.name != "agent-1.log"


def _served_cert(port: int) -> x509.Certificate:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_serving_certificate_from_a_csr_is_used_by_the_api_server_and_rotated(
    controller_manager: ControlPlane,
    tmp_path: Path,
    nodes: list[Node],
    earlier_csrs: frozenset[str],
) -> None:
    require_root()
    cp = controller_manager
    kc = node_credentials(cp, tmp_path)
    cert_dir = tmp_path / "kubelet-pki"
    node = start_kubelet(
        cp,
        tmp_path / "n2",
        "--kubeconfig",
        str(kc),
        "--cert-dir",
        str(cert_dir),
        "--rotate-server-certificates",
        "--authorization-mode",
        "Webhook",
        verify_server=False,
    )
    nodes.append(node)
    cp.node_object(NODE, node.port)
    proxy = f"/api/v1/nodes/{NODE}/proxy/pods"
    # until a signed certificate is served, the API server (--kubelet-certificate-authority)
    # refuses the kubelet's placeholder
    placeholder = _served_cert(node.port)
    assert placeholder.issuer == placeholder.subject

    def pending(seen: set[str]) -> dict[str, object] | None:
        for c in cp.csrs(SERVING_SIGNER):
            if c["metadata"]["name"] not in seen and not c.get("status", {}).get("conditions"):
                return c
        return None

    seen = set(earlier_csrs)
    csr = wait_until(lambda: pending(seen), 60, "a kubelet-serving CSR")
    seen.add(csr["metadata"]["name"])
    request = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))
    sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert NODE in sans.get_values_for_type(x509.DNSName)
    assert request.subject.rfc4514_string() == f"CN=system:node:{NODE},O=system:nodes"
    assert csr["spec"]["usages"] == ["digital signature", "key encipherment", "server auth"]
    with pytest.raises(ApiError, match=r"x509|certificate"):
        cp.request("GET", proxy)
    cp.approve(csr)

    # hot reload: the server presents the signed certificate without a restart
    pid = node.proc.pid if node.proc else 0

    def signed_one() -> x509.Certificate | None:
        served = _served_cert(node.port)
        return served if _signed_by(served, cp.ca.cert_file) else None

    signed = wait_until(signed_one, 60, "the signed serving certificate to be served")
    assert cp.request("GET", proxy)["kind"] == "PodList"  # verified by the API server

    # rotation: a second CSR before expiry, approved, reloaded; same process throughout
    csr2 = wait_until(lambda: pending(seen), 240, "the rotation CSR", interval_s=1)
    cp.approve(csr2)
    wait_until(
        lambda: _served_cert(node.port).serial_number != signed.serial_number,
        60,
        "the rotated serving certificate",
    )
    assert node.proc is not None and node.proc.pid == pid and node.proc.poll() is None
    assert cp.request("GET", proxy)["kind"] == "PodList"


def test_a_running_exec_survives_serving_certificate_rotation(
    controller_manager: ControlPlane, tmp_path: Path, earlier_csrs: frozenset[str]
) -> None:
    """kubectl exec through the API server keeps its stream while the kubelet's serving
    certificate is replaced underneath (established TLS sessions keep theirs)."""
    require_root()
    cp = controller_manager
    cert_dir = tmp_path / "kubelet-pki"
    with node_with_pod(
        cp, tmp_path, "--cert-dir", str(cert_dir), "--rotate-server-certificates"
    ) as (
        node,
        admin,
    ):
        seen = set(earlier_csrs)

        def pending() -> dict[str, Any] | None:
            for c in cp.csrs(SERVING_SIGNER):
                name = c["metadata"]["name"]
                if name not in seen and not c.get("status", {}).get("conditions"):
                    return c
            return None

        first = wait_until(pending, 60, "a kubelet-serving CSR")
        seen.add(first["metadata"]["name"])
        cp.approve(first)
        wait_until(
            lambda: _signed_by(_served_cert(node.port), cp.ca.cert_file), 60, "the signed cert"
        )
        before = _served_cert(node.port).serial_number
        kubectl = str(UPSTREAM_BIN / "kubectl")
        proc = subprocess.Popen(
            [kubectl, f"--kubeconfig={admin}", "exec", "-i", MIRROR, "-c", "main", "--", "cat"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b"before rotation\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == b"before rotation\n"
            second = wait_until(pending, 240, "the rotation CSR", interval_s=1)
            cp.approve(second)
            wait_until(
                lambda: _served_cert(node.port).serial_number != before, 60, "the new cert served"
            )
            proc.stdin.write(b"after rotation\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == b"after rotation\n"
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

"""``pykubelet doctor`` in node mode: CIS 4.2.10 (client certificate rotation) and 4.2.11
(serving certificate rotation) PASS only when pykubelet really rotates."""

from __future__ import annotations

import io
from pathlib import Path

import yaml

from pykubelet.security.doctor import check_config, doctor_main


def _kubeconfig(path: Path, cert: str) -> str:
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"client-certificate": cert, "client-key": cert}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _status(cfg: dict[str, object], kubeconfig: str = "") -> dict[str, str]:
    return {f.id: f.status for f in check_config(cfg, kubeconfig=kubeconfig)}


def test_client_rotation_passes_only_when_the_rotating_file_is_used(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    rotating = _kubeconfig(tmp_path / "a", str(pki / "kubelet-client-current.pem"))
    fixed = _kubeconfig(tmp_path / "b", str(tmp_path / "node.pem"))
    on = {"rotateCertificates": True, "certDir": str(pki)}
    assert _status({}, rotating)["4.2.10"] == "FAIL"  # pykubelet's default is false
    assert _status({**on, "rotateCertificates": False}, rotating)["4.2.10"] == "FAIL"
    assert _status(on, fixed)["4.2.10"] == "FAIL"  # set, but nothing would rotate
    assert _status(on, rotating)["4.2.10"] == "PASS"
    assert _status({**on, "_bootstrapKubeconfig": "/b"}, fixed)["4.2.10"] == "PASS"
    assert _status({})["4.2.10"] == "PASS"  # standalone: no client certificate


def test_serving_rotation_passes_only_with_server_tls_bootstrap(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kc", "/x.pem")
    assert _status({}, kc)["4.2.11"] == "FAIL"
    assert _status({"serverTLSBootstrap": True}, kc)["4.2.11"] == "PASS"
    gate_off = {
        "serverTLSBootstrap": True,
        "featureGates": {"RotateKubeletServerCertificate": False},
    }
    assert _status(gate_off, kc)["4.2.11"] == "FAIL"


def test_flags_count_as_run_applies_them(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kc", "/x.pem")
    (tmp_path / "bk").write_text("")
    out = io.StringIO()
    doctor_main(
        [
            "--kubeconfig",
            kc,
            "--bootstrap-kubeconfig",
            str(tmp_path / "bk"),
            "--rotate-certificates",
            "--rotate-server-certificates",
        ],
        stdout=out,
    )
    assert _row(out.getvalue(), "4.2.10") == _row(out.getvalue(), "4.2.11") == "PASS"
    out = io.StringIO()
    doctor_main(["--kubeconfig", kc], stdout=out)
    assert _row(out.getvalue(), "4.2.10") == _row(out.getvalue(), "4.2.11") == "FAIL"


def _row(table: str, check: str) -> str:
    """The STATUS column of ``check``'s row in doctor's text table."""
    [row] = [line.split() for line in table.splitlines() if line.split()[1:2] == [check]]
    return row[0]

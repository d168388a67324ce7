"""The start-up exposure list and warning block."""

from __future__ import annotations

import os
from pathlib import Path

from pykubelet.security.warnings import (
    SecurityPosture,
    exposures,
    posture_from_mapping,
    warning_block,
)


def keys(p: SecurityPosture) -> list[str]:
    return [e.key for e in exposures(p)]


def test_secure_defaults_expose_nothing() -> None:
    p = posture_from_mapping({"authentication": {"x509": {"clientCAFile": "/etc/ca.crt"}}})
    assert p.authorization_mode == "Policy" and not p.anonymous_enabled
    assert p.read_only_port == 0 and p.healthz_bind_address == "127.0.0.1"
    assert exposures(p) == []
    assert warning_block([]) == ""


def test_open_kubelet_lists_every_exposure_with_whom() -> None:
    cfg = {
        "address": "0.0.0.0",
        "readOnlyPort": 10255,
        "healthzBindAddress": "0.0.0.0",
        "authentication": {"anonymous": {"enabled": True}},
        "authorization": {"mode": "AlwaysAllow"},
    }
    found = exposures(posture_from_mapping(cfg))
    assert [e.key for e in found] == [
        "anonymous-auth",
        "always-allow",
        "read-only-port",
        "no-client-credentials",
        "healthz-bind",
    ]
    assert all(e.severity == "FAIL" for e in found[:4])
    block = warning_block(found)
    assert block.startswith("=" * 78 + "\npykubelet SECURITY WARNING")
    assert "anyone who can reach any address of this machine may list every pod" in block
    assert "run commands in every container" in block
    assert "0.0.0.0:10255 serves /pods" in block
    assert "fix: set readOnlyPort: 0" in block
    assert block.count("\n  [") == 5


def test_anonymous_with_policy_is_a_warning_not_a_failure() -> None:
    p = SecurityPosture(anonymous_enabled=True, client_ca_file="/ca", address="127.0.0.1")
    (e,) = exposures(p)
    assert e.key == "anonymous-auth" and e.severity == "WARN"
    assert "processes on this machine (127.0.0.1)" in e.summary
    assert "system:anonymous" in e.summary


def test_non_loopback_without_credentials() -> None:
    assert keys(SecurityPosture(address="10.0.0.5")) == ["no-client-credentials"]
    assert keys(SecurityPosture(address="127.0.0.1")) == []
    assert keys(SecurityPosture(address="::1")) == []
    assert keys(SecurityPosture(address="10.0.0.5", token_file="/t")) == []
    # the token webhook only counts in node mode
    cfg = {"address": "10.0.0.5", "authentication": {"webhook": {"enabled": True}}}
    assert keys(posture_from_mapping(cfg)) == ["no-client-credentials"]
    assert keys(posture_from_mapping(cfg, kubeconfig="/kc")) == []


def test_token_file_readable_by_others(tmp_path: Path) -> None:
    tf = tmp_path / "tokens.csv"
    tf.write_text("t,u,1\n")
    os.chmod(tf, 0o644)
    p = SecurityPosture(address="127.0.0.1", token_file=str(tf))
    assert keys(p) == ["token-file-mode"]
    os.chmod(tf, 0o600)
    assert keys(p) == []

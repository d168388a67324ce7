"""``pykubelet images pull`` and ``rm`` against the real TLS registry with basic auth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.images.registry import Registry


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pykubelet.cli", "images", *args], capture_output=True, text=True
    )


def test_pull_list_rm(tmp_path: Path, tls_registry: Registry) -> None:
    root = str(tmp_path / "root")
    ref = f"{tls_registry.host}/private/busybox:1.0"
    ca = ["--image-registry-ca-file", tls_registry.ca_file, "--root-dir", root]
    denied = _cli("pull", ref, *ca)
    assert denied.returncode == 1 and "unauthorized" in denied.stderr
    bad = _cli("pull", ref, "--creds", "nocolon", *ca)
    assert bad.returncode == 2 and "--creds" in bad.stderr
    ok = _cli("pull", ref, "--creds", f"{tls_registry.user}:{tls_registry.password}", *ca)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"pulled {ref} (sha256:")
    assert ref in _cli("list", "--root-dir", root).stdout
    removed = _cli("rm", ref, "--root-dir", root)
    assert removed.returncode == 0 and removed.stdout.startswith(f"deleted {ref}")
    assert ref not in _cli("list", "--root-dir", root).stdout
    assert _cli("rm", ref, "--root-dir", root).returncode == 2  # no such image
    # credentials from a docker config file
    config = tmp_path / "config.json"
    auth = {"username": tls_registry.user, "password": tls_registry.password}
    config.write_text(json.dumps({"auths": {f"https://{tls_registry.host}": auth}}))
    again = _cli("pull", ref, "--docker-config-file", str(config), *ca)
    assert again.returncode == 0, again.stderr

"""The ``pykubelet`` command as a real subprocess."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from pykubelet.security.certs import create_ca

PYKUBELET = [sys.executable, "-m", "pykubelet.cli"]

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: c, image: busybox}]
"""


def _read_until(proc: subprocess.Popen[bytes], *needles: str, timeout_s: float = 10.0) -> str:
    assert proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    seen = ""
    deadline = time.monotonic() + timeout_s
    while not all(n in seen for n in needles):
        left = deadline - time.monotonic()
        assert left > 0, f"{needles!r} not logged within {timeout_s}s; got:\n{seen}"
        if sel.select(left):
            chunk = os.read(proc.stderr.fileno(), 65536)
            assert chunk, f"process exited before logging {needles!r}:\n{seen}"
            seen += chunk.decode()
    return seen


def test_run_serves_static_pods_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    pods = tmp_path / "pods"
    pods.mkdir()
    (pods / "web.yaml").write_text(POD)
    ca = create_ca(str(tmp_path / "pki"))
    proc = subprocess.Popen(
        [
            *PYKUBELET,
            "run",
            "--runtime",
            "fake",
            "--pod-manifest-path",
            str(pods),
            "--root-dir",
            str(tmp_path / "root"),
            "--address",
            "127.0.0.1",
            "--port",
            "0",
            "--healthz-port",
            "0",
            "--node-name",
            "n1",
            "--cert-dir",
            str(tmp_path / "pki"),
            "--client-ca-file",
            ca.cert_file,
        ],
        stderr=subprocess.PIPE,
    )
    try:
        _read_until(proc, "pod default/web-n1", "host: running as", "cgroups:", "kubelet API: curl")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_part_refusing_to_start_is_one_clear_line(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            *PYKUBELET,
            "run",
            "--runtime",
            "fake",
            "--root-dir",
            str(tmp_path),
            "--port",
            "0",
            "--healthz-port",
            "0",
            "--address",
            "127.0.0.1",
            "--node-name",
            "n1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1].startswith(
        "pykubelet: authentication: No authentication method configured"
    )


def test_bad_configuration_exits_2_with_one_line_per_field(tmp_path: Path) -> None:
    cfg = tmp_path / "k.yaml"
    cfg.write_text(
        "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\nport: x\nnope: 1\n"
    )
    r = subprocess.run([*PYKUBELET, "run", "--config", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "pykubelet: invalid configuration: nope: unknown field",
        "pykubelet: invalid configuration: port: expected an integer, got string",
    ]


def test_usage_and_unknown_commands() -> None:
    r = subprocess.run([*PYKUBELET, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "run [--config FILE]" in r.stdout
    r = subprocess.run([*PYKUBELET, "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = subprocess.run([*PYKUBELET], capture_output=True, text=True)
    assert r.returncode == 2

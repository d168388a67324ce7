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
        "pykubelet: invalid configuration: port: expected an integer, got string",
    ]
    r = subprocess.run(
        [*PYKUBELET, "run", "--config", str(cfg), "--strict-config"],
        capture_output=True,
        text=True,
    )
    assert r.stderr.splitlines() == [
        "pykubelet: invalid configuration: nope: unknown field",
        "pykubelet: invalid configuration: port: expected an integer, got string",
    ]


def test_usage_and_unknown_commands() -> None:
    r = subprocess.run([*PYKUBELET, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "run [--config FILE]" in r.stdout
    r = subprocess.run([*PYKUBELET, "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = subprocess.run([*PYKUBELET, "doctr"], capture_output=True, text=True)
    assert r.stderr == "pykubelet: unknown command 'doctr'; did you mean 'doctor'? " + (
        "(pykubelet --help lists them)\n"
    )
    r = subprocess.run([*PYKUBELET], capture_output=True, text=True)
    assert r.returncode == 2


def test_unknown_flag_is_one_line_with_the_closest_match() -> None:
    r = subprocess.run([*PYKUBELET, "run", "--prot", "1"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr == (
        "pykubelet run: unknown flag --prot; did you mean --port? "
        "(pykubelet run --help lists them)\n"
    )
    r = subprocess.run([*PYKUBELET, "run", "--por=1"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown flag --por; did you mean --port?" in r.stderr


def test_version_everywhere() -> None:
    from importlib.metadata import version

    expected = f"pykubelet {version('pykubelet')}\n"
    for argv in (["--version"], ["version"], ["run", "--version"]):
        r = subprocess.run([*PYKUBELET, *argv], capture_output=True, text=True)
        assert (r.returncode, r.stdout) == (0, expected), argv


def test_help_gives_each_flag_its_description_default_and_field() -> None:
    r = subprocess.run([*PYKUBELET, "run", "--help"], capture_output=True, text=True)
    text = " ".join(r.stdout.split())
    assert "--max-pods VALUE pods admitted at most (default 110; config: maxPods)" in text
    assert "(default 4h0m0s; config: streamingConnectionIdleTimeout)" in text
    assert "(default false; config: rotateCertificates)" in text  # implemented: no marker
    assert "ACCEPTED, NOT ENFORCED" not in text.split("rotateCertificates)")[1][:40]
    assert "overrides port" not in text  # the old help said only that


def test_port_in_use_names_the_owner_and_the_fix(tmp_path: Path) -> None:
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    ca = create_ca(str(tmp_path / "pki"))
    try:
        r = subprocess.run(
            [
                *PYKUBELET,
                "run",
                "--runtime",
                "fake",
                "--root-dir",
                str(tmp_path / "root"),
                "--address",
                "127.0.0.1",
                "--port",
                str(port),
                "--healthz-port",
                "0",
                "--client-ca-file",
                ca.cert_file,
                "--node-name",
                "n1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close()
    assert r.returncode == 1 and "Traceback" not in r.stderr
    me = Path("/proc/self/comm").read_text().strip()
    assert r.stderr.splitlines()[-1] == (
        f"pykubelet: port {port} is already in use by {me} (pid {os.getpid()}): stop it, or "
        "choose another port with --port"
    )


def test_completion_scripts_know_commands_and_run_flags() -> None:
    for shell in ("bash", "zsh"):
        r = subprocess.run([*PYKUBELET, "completion", shell], capture_output=True, text=True)
        assert r.returncode == 0
        assert "complete -F _pykubelet pykubelet" in r.stdout
        assert "--pod-manifest-path" in r.stdout and "doctor" in r.stdout
    bash = subprocess.run(["bash", "--version"], capture_output=True)
    if bash.returncode == 0:  # the script is valid bash and completes a flag
        script = subprocess.run(
            [*PYKUBELET, "completion", "bash"], capture_output=True, text=True
        ).stdout
        out = subprocess.run(
            [
                "bash",
                "-c",
                script + "COMP_WORDS=(pykubelet run --pod-man); COMP_CWORD=2; _pykubelet; "
                'echo "${COMPREPLY[@]}"',
            ],
            capture_output=True,
            text=True,
        )
        assert out.stdout.split() == ["--pod-manifest-path"]


def test_json_logs_carry_ts_level_msg_and_fields(tmp_path: Path) -> None:
    import json

    cfg = tmp_path / "k.yaml"
    cfg.write_text(
        "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\n"
        "logging: {format: json, verbosity: 4}\nmaxOpenFiles: 4096\nbogus: 1\n"
    )
    ca = create_ca(str(tmp_path / "pki"))
    proc = subprocess.Popen(
        [
            *PYKUBELET,
            "run",
            "--config",
            str(cfg),
            "--runtime",
            "fake",
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
            "--client-ca-file",
            ca.cert_file,
        ],
        stderr=subprocess.PIPE,
    )
    try:
        seen = _read_until(proc, "kubelet API: curl")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None
        seen += proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [json.loads(line) for line in seen.splitlines() if line.strip()]
    assert all({"ts", "level", "msg", "logger", "caller"} <= set(d) for d in lines)
    assert all(isinstance(d["ts"], float) for d in lines)
    [warned] = [d for d in lines if d.get("field") == "maxOpenFiles"]
    assert warned["level"] == "warning" and warned["status"] == "not enforced"
    assert "NOT ENFORCED" in warned["msg"]
    [unknown] = [d for d in lines if d.get("field") == "bogus"]
    assert unknown["status"] == "unknown"
    assert any(d["level"] == "debug" for d in lines)  # verbosity 4 from the config's logging
    # flags override the file: text lines again, no debug
    r = subprocess.run(
        [*PYKUBELET, "run", "--config", str(cfg), "--logging-format", "text", "-v", "0",
         "--runtime", "fake", "--root-dir", str(tmp_path / "root"), "--node-name", "n1",
         "--port", "0", "--healthz-port", "0", "--address", "127.0.0.1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1  # no client CA: refuses to start, in one line
    assert not any(line.startswith("{") for line in r.stderr.splitlines())
    assert " DEBUG " not in r.stderr
    assert "WARNING pykubelet.config: maxOpenFiles is accepted but NOT ENFORCED" in r.stderr


def test_missing_ca_and_unreadable_key_are_one_line_with_the_fix(tmp_path: Path) -> None:
    ca = create_ca(str(tmp_path / "pki"))
    (tmp_path / "bad.key").write_text("not a key\n")
    base = [*PYKUBELET, "run", "--runtime", "fake", "--root-dir", str(tmp_path / "root")]
    base += ["--address", "127.0.0.1", "--port", "0", "--healthz-port", "0", "--node-name", "n1"]
    cases = {
        "missing CA": (
            ["--client-ca-file", str(tmp_path / "missing.crt")],
            "fix: point --client-ca-file at a readable PEM bundle",
        ),
        "bad key": (
            [
                "--client-ca-file",
                ca.cert_file,
                "--tls-cert-file",
                ca.cert_file,
                "--tls-private-key-file",
                str(tmp_path / "bad.key"),
            ],
            "fix: --tls-cert-file and --tls-private-key-file must be readable PEM files",
        ),
    }
    for name, (flags, fix) in cases.items():
        r = subprocess.run([*base, *flags], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, name
        assert "Traceback" not in r.stderr, name
        last = r.stderr.splitlines()[-1]
        assert last.startswith("pykubelet: ") and fix in last, (name, last)

"""systemd integration: Type=notify over a real NOTIFY_SOCKET (a listener of our own standing in
for systemd), the watchdog, and the unit file shipped in the package."""

from __future__ import annotations

import configparser
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pykubelet
from pykubelet.host.sdnotify import notify, watchdog_interval_s
from pykubelet.security.certs import create_ca


def _receive(sock: socket.socket, timeout_s: float) -> list[str]:
    """Every datagram until ``timeout_s`` passes without one."""
    got = []
    sock.settimeout(timeout_s)
    while True:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            return got


def _until(sock: socket.socket, want: str, timeout_s: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not any(want in m for m in got):
        left = deadline - time.monotonic()
        assert left > 0, f"{want!r} never arrived; got {got}"
        sock.settimeout(left)
        got.append(sock.recv(4096).decode())
    return got


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(tmp_path / "notify.sock"))
    yield s
    s.close()


def test_ready_watchdog_and_stopping_reach_the_notify_socket(
    tmp_path: Path, listener: socket.socket
) -> None:
    ca = create_ca(str(tmp_path / "pki"))
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
        "WATCHDOG_USEC": "200000",  # a ping every 0.1 s
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pykubelet.cli",
            "run",
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
            "--client-ca-file",
            ca.cert_file,
            "--node-name",
            "sd-node",
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        first = _until(listener, "READY=1", 30)
        assert first[-1] == "READY=1\nSTATUS=serving, node sd-node"
        assert not any("WATCHDOG" in m for m in first)  # no ping before it is ready
        pings = _until(listener, "WATCHDOG=1", 5)
        pings += _until(listener, "WATCHDOG=1", 5)
        assert pings.count("WATCHDOG=1") >= 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        rest = _receive(listener, 0.5)
        assert rest and rest[-1] == "STOPPING=1"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_abstract_socket_and_no_systemd() -> None:
    name = f"pykubelet-test-{secrets.token_hex(4)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        assert notify("READY=1", env={"NOTIFY_SOCKET": "@" + name}) is True
        s.settimeout(5)
        assert s.recv(100) == b"READY=1"
    assert notify("READY=1", env={}) is False  # not under systemd: a no-op
    assert notify("READY=1", env={"NOTIFY_SOCKET": "relative"}) is False


def test_watchdog_interval_is_half_the_timeout_and_only_for_us() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}) is None
    mine = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval_s(mine) == 0.5
    assert watchdog_interval_s({}) is None and watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None


def test_the_shipped_unit_file() -> None:
    unit = Path(pykubelet.__file__).parent / "data" / "pykubelet.service"
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(unit.read_text())
    svc = cp["Service"]
    assert svc["Type"] == "notify" and svc["KillMode"] == "process" and svc["Delegate"] == "yes"
    assert svc["ExecStart"].split()[1:3] == ["run", "--config"]
    assert cp["Install"]["WantedBy"] == "multi-user.target"
    analyze = subprocess.run(["systemd-analyze", "--version"], capture_output=True)
    if analyze.returncode == 0:  # systemd's own parser agrees (not on every CI image)
        r = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True
        )
        bad = [ln for ln in r.stderr.splitlines() if "Unknown key" in ln or "Invalid" in ln]
        assert bad == []

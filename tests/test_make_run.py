"""`make run` (scripts/run-standalone.sh) prints its "try: curl" banner only once the agent's
API is listening, and Ctrl-C/TERM stops the agent through it."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port
from tests.prereq import require

REPO = Path(__file__).resolve().parent.parent


def _cgroup_dirs(name: str) -> list[Path]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split(" - ", 1)[-1].split()[0] in ("cgroup", "cgroup2"):
            d = Path(line.split()[4]) / name
            if d.is_dir():
                out.append(d)
    return out


def test_the_banner_comes_once_the_listener_is_up(tmp_path: Path) -> None:
    require(Path("/bin/busybox").exists(), "needs Debian's busybox-static (/bin/busybox)")
    pods = tmp_path / "pods"
    pods.mkdir()
    port = free_port()
    cgroup = f"pykubelet-makerun-{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "PORT": str(port),
        "HEALTHZ_PORT": str(free_port()),
        "PODS": str(pods),
        "CGROUP_ROOT": cgroup,
    }
    proc = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "run-standalone.sh"), str(tmp_path / "run")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            if line.strip().startswith("try:"):
                # at the moment the banner says "try", trying works
                with socket.create_connection(("127.0.0.1", port), timeout=5):
                    pass
                assert f"https://127.0.0.1:{port}/pods" in line
                break
            assert time.monotonic() < deadline, "no banner"
        else:
            raise AssertionError(f"the script ended without a banner (exit {proc.wait()})")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        with socket.socket() as s:  # the agent is gone with the script
            assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for d in _cgroup_dirs(cgroup):
            for sub in sorted(d.rglob("*"), key=lambda p: -len(str(p))):
                if sub.is_dir():
                    sub.rmdir()
            d.rmdir()

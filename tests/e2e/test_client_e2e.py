"""``pykubelet client`` against a real ``pykubelet run`` on the process runtime with a busybox
pod: exec exit statuses, stdin (v5 CLOSE), a TTY in raw mode with resizes, ``logs -f`` and
``port-forward`` to a real HTTP server in the pod."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.request

from tests.e2e.node import NODE, Node, wait_for

POD = f"cli-{NODE}"
MANIFEST = """apiVersion: v1
kind: Pod
metadata: {name: cli}
spec:
  terminationGracePeriodSeconds: 1  # sh as PID 1 ignores SIGTERM: do not wait 30 s at cleanup
  containers:
  - name: main
    image: busybox
    command:
    - sh
    - -c
    - >-
      mkdir -p /www && echo hello-pf > /www/index.html && (httpd -f -p 8080 -h /www &)
      && i=0; while true; do echo line=$i; i=$((i+1)); sleep 1; done
"""


def _flags(node: Node) -> list[str]:
    return [
        "--server", f"https://127.0.0.1:{node.port}",
        "--certificate-authority", node.ca.cert_file,
        "--client-certificate", node.client.cert_file,
        "--client-key", node.client.key_file,
    ]  # fmt: skip


def _cmd(node: Node, *args: str) -> list[str]:
    return [sys.executable, "-m", "pykubelet.cli", "client", *args, *_flags(node)]


def _client(
    node: Node, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The client with the node's flags placed before any ``-- CMD``."""
    cut = args.index("--") if "--" in args else len(args)
    cmd = _cmd(node, *args[:cut]) + list(args[cut:])
    return subprocess.run(
        cmd, input=stdin, capture_output=True, timeout=60, env={**os.environ, **(env or {})}
    )


# exec's transports: WebSocket v5 (pykubelet accepts it), and SPDY as kubectl's switch forces it
# (the path taken against the Go kubelet, which refuses v5)
TRANSPORTS = {"websocket": {}, "spdy": {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}}


def _running(node: Node) -> None:
    node.write_pod("cli", MANIFEST)

    def up() -> bool:
        c = node.container("cli", "main")
        return bool(c and "running" in c.get("state", {}))

    wait_for(up, 60, "the busybox pod to run")


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _read_until(fd: int, pattern: bytes, timeout_s: float, poke: bytes = b"") -> bytes:
    """Read the PTY master until ``pattern`` shows up; write ``poke`` each time it is quiet."""
    seen = b""
    deadline = time.monotonic() + timeout_s
    while pattern not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern!r} not seen in {seen[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
        elif poke:
            os.write(fd, poke)
    return seen


def test_exec_status_stdin_and_tty(node: Node) -> None:
    node.start()
    _running(node)
    missing = _client(node, "exec", "nosuch", "--", "true")
    assert missing.returncode == 1
    assert missing.stderr == b'Error from server (NotFound): pods "nosuch" not found\n'
    for name, env in TRANSPORTS.items():
        r = _client(node, "exec", POD, "--", "sh", "-c", "echo out; echo err >&2; exit 3", env=env)
        assert r.returncode == 3, (name, r.stderr)
        assert r.stdout == b"out\n", name
        assert r.stderr == b"err\ncommand terminated with exit code 3\n", name
        piped = _client(node, "exec", "-i", POD, "--", "cat", stdin=b"through stdin\n", env=env)
        assert (piped.returncode, piped.stdout) == (0, b"through stdin\n"), (name, piped.stderr)
        _interactive_shell(node, env)


def _interactive_shell(node: Node, env: dict[str, str]) -> None:
    """-it under a real terminal: raw mode, the size sent first, then a SIGWINCH resize."""
    master, slave = os.openpty()
    _set_size(slave, 33, 101)
    proc = subprocess.Popen(
        [*_cmd(node, "exec", "-it", POD), "--", "sh"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env={**os.environ, **env},
    )
    os.close(slave)
    try:
        _read_until(master, b"33 101", 30, poke=b"stty size\n")
        _set_size(master, 40, 120)
        proc.send_signal(signal.SIGWINCH)
        _read_until(master, b"40 120", 30, poke=b"stty size\n")
        os.write(master, b"exit 7\n")
        assert proc.wait(timeout=30) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_logs_follow_and_port_forward(node: Node) -> None:
    node.start()
    _running(node)
    logs = subprocess.Popen(_cmd(node, "logs", "-f", "--tail", "1", POD), stdout=subprocess.PIPE)
    try:
        assert logs.stdout is not None
        first = logs.stdout.readline().decode()
        second = logs.stdout.readline().decode()
        m = re.fullmatch(r"line=(\d+)\n", first)
        assert m and second == f"line={int(m[1]) + 1}\n", (first, second)
    finally:
        logs.terminate()
        logs.wait(timeout=20)

    pf = subprocess.Popen(_cmd(node, "port-forward", POD, ":8080"), stdout=subprocess.PIPE)
    try:
        assert pf.stdout is not None
        line = pf.stdout.readline().decode()
        m = re.fullmatch(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080\n", line)
        assert m, line

        def fetched() -> bytes | None:
            try:
                url = f"http://127.0.0.1:{m[1]}/index.html"
                with urllib.request.urlopen(url, timeout=10) as resp:
                    return bytes(resp.read())
            except OSError:
                return None  # httpd may not listen yet

        assert wait_for(fetched, 30, "the pod's httpd through the tunnel") == b"hello-pf\n"
    finally:
        pf.terminate()
        pf.wait(timeout=20)

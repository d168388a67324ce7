"""kubectl (the built v1.20.2, and the ``kubectl`` on PATH) through a real kube-apiserver to
pykubelet: ``exec -it`` gets a real terminal in an image container, exit codes pass through.

Node mode is not needed: the Node object (address 127.0.0.1, the kubelet port) and the static
pod's mirror are made by hand, as node mode would make them. The API server verifies the
kubelet's serving certificate (``--kubelet-certificate-authority``) and authenticates with its
kubelet client certificate, which pykubelet's Webhook authorizer asks the API server about.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import hashlib
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apiserver.controlplane import UPSTREAM_BIN, ControlPlane
from tests.apiserver.kubelet import NODE, ClusterNode
from tests.apiserver.podnode import ECHO_PORT, MIRROR, node_with_pod
from tests.e2e.node import wait_for
from tests.prereq import require, require_root

pytestmark = pytest.mark.root


def _kubectls() -> list[str]:
    found = [str(UPSTREAM_BIN / "kubectl")]
    on_path = shutil.which("kubectl")
    if on_path:
        found.append(on_path)
    return found


@pytest.fixture(scope="module")
def cluster_node(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ControlPlane, ClusterNode, Path]]:
    require_root()
    require(Path("/bin/busybox").exists(), "needs Debian's busybox-static (/bin/busybox)")
    with node_with_pod(control_plane, tmp_path_factory.mktemp("kubectl-node")) as (node, admin):
        yield control_plane, node, admin


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class _Pty:
    """kubectl on a terminal of its own (it is the session leader; a resize of the terminal
    sends it SIGWINCH, as in a real terminal window)."""

    def __init__(self, argv: list[str], rows: int, cols: int) -> None:
        self.master, slave = os.openpty()
        _set_size(self.master, rows, cols)

        def ctty() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, preexec_fn=ctty, close_fds=True
        )
        os.close(slave)
        self.screen = b""

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, pattern: bytes, timeout_s: float = 30) -> re.Match[bytes]:
        deadline = time.monotonic() + timeout_s
        while (m := re.search(pattern, self.screen)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} on the terminal: {self.screen[-2000:]!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed: {self.screen[-2000:]!r}")
                self.screen += chunk
        self.screen = self.screen[m.end() :]
        return m

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=30)
        finally:
            os.close(self.master)


@pytest.mark.parametrize("kubectl", _kubectls(), ids=lambda p: "path" if "/usr" in p else "v1.20.2")
def test_kubectl_exec_it_gets_a_real_terminal(
    cluster_node: tuple[ControlPlane, ClusterNode, Path], kubectl: str
) -> None:
    _cp, _node, admin = cluster_node
    term = _Pty(
        [kubectl, f"--kubeconfig={admin}", "exec", "-it", MIRROR, "-c", "main", "--", "sh", "-i"],
        31,
        97,
    )
    try:
        term.type(b"tty; stty size; echo mark-$((6*7))\r")
        m = term.expect(rb"(/dev/pts/\d+)\r\n(\d+ \d+)\r\nmark-42")
        assert m[2] == b"31 97", m[0]
        _set_size(term.master, 45, 120)  # the window grows: kubectl forwards the resize
        term.type(b"stty size; echo mark-$((6*8))\r")
        assert term.expect(rb"(\d+ \d+)\r\nmark-48")[1] == b"45 120"
        term.type(b"sleep 300 &\rjobs; echo mark-$((7*7))\r")
        term.expect(rb"\[1\]\+ +Running +sleep 300\r\nmark-49")
        term.type(b"kill %1; exit 3\r")
    finally:
        code = term.close()
    assert code == 3
    assert b"job control turned off" not in term.screen


@pytest.mark.parametrize("kubectl", _kubectls(), ids=lambda p: "path" if "/usr" in p else "v1.20.2")
def test_kubectl_exec_exit_code_and_stdin(
    cluster_node: tuple[ControlPlane, ClusterNode, Path], kubectl: str
) -> None:
    _cp, node, admin = cluster_node
    base = [kubectl, f"--kubeconfig={admin}", "exec", "-c", "main"]
    r = subprocess.run([*base, MIRROR, "--", "sh", "-c", "exit 7"], capture_output=True, timeout=60)
    assert r.returncode == 7, r.stderr
    r = subprocess.run(
        [*base, "-i", MIRROR, "--", "sh", "-c", "wc -c; echo err >&2"],
        input=b"x" * 100_000,
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == b"100000"
    assert r.stderr.strip() == b"err"
    # the request log tells the kubelet's time from its waits on kubectl (through the API
    # server): stream creation and hang-up (bench_apiserver's share column relies on it); the
    # hang-up that ends a finished session is no abort: logged 101, not 499
    last = [ln[ln.index("{") :] for ln in node.log().splitlines() if '"path":"/exec/' in ln][-1]
    rec = json.loads(last)
    assert 0 < rec["peerWaitMs"] < rec["durationMs"], rec
    assert rec["status"] == 101, rec


def _kubectl(kubectl: str, admin: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [kubectl, f"--kubeconfig={admin}", *args], capture_output=True, timeout=60
    )


@pytest.mark.parametrize("kubectl", _kubectls(), ids=lambda p: "path" if "/usr" in p else "v1.20.2")
def test_kubectl_logs_raw_proxy_and_cp(
    cluster_node: tuple[ControlPlane, ClusterNode, Path], kubectl: str, tmp_path: Path
) -> None:
    _cp, _node, admin = cluster_node
    wait_for(
        lambda: b"line-50" in _kubectl(kubectl, admin, "logs", MIRROR, "-c", "logger").stdout,
        30,
        "the logger's output",
    )
    r = _kubectl(kubectl, admin, "logs", MIRROR, "-c", "logger", "--tail", "2")
    assert r.stdout == b"line-49\nline-50\n", r.stderr
    r = _kubectl(kubectl, admin, "logs", MIRROR, "-c", "logger", "--limit-bytes", "14")
    assert r.stdout == b"line-1\nline-2\n"
    r = _kubectl(kubectl, admin, "logs", MIRROR, "-c", "logger", "--timestamps", "--tail", "1")
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line-50\n", r.stdout), r.stdout

    for path, key in (
        ("pods", b'"kind":"PodList"'),
        ("stats/summary", b'"nodeName"'),
        ("metrics/resource", b"node_cpu_usage_seconds_total"),
        ("metrics/cadvisor", b"container_cpu_usage_seconds_total"),
        ("configz", b'"kubeletconfig"'),
    ):
        r = _kubectl(kubectl, admin, "get", "--raw", f"/api/v1/nodes/{NODE}/proxy/{path}")
        assert r.returncode == 0, (path, r.stderr)
        assert key in r.stdout.replace(b" ", b"").replace(b"\n", b""), (path, r.stdout[:300])

    data = os.urandom(300_000)
    src = tmp_path / "blob"
    src.write_bytes(data)
    r = _kubectl(kubectl, admin, "cp", str(src), f"default/{MIRROR}:/tmp/blob", "-c", "main")
    assert r.returncode == 0, r.stderr
    back = tmp_path / "back"
    r = _kubectl(kubectl, admin, "cp", f"default/{MIRROR}:/tmp/blob", str(back), "-c", "main")
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("kubectl", _kubectls(), ids=lambda p: "path" if "/usr" in p else "v1.20.2")
def test_kubectl_port_forward_several_connections(
    cluster_node: tuple[ControlPlane, ClusterNode, Path], kubectl: str
) -> None:
    """Regression (PATH kubectl >= 1.31): it tunnels SPDY in WebSocket messages, which a 1.20 API
    server passes through; its zero-length messages used to end the session as an EOF."""
    _cp, node, admin = cluster_node
    before = len(_records(node, "/portForward/"))
    proc = subprocess.Popen(
        [kubectl, f"--kubeconfig={admin}", "port-forward", f"pod/{MIRROR}", f":{ECHO_PORT}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(rb"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", line)
        assert m, line
        port = int(m[1])

        def echo(size: int) -> bool:
            payload = os.urandom(size)
            got = b""
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                while chunk := s.recv(65536):
                    got += chunk
            return hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(echo, [1 << 20, 2 << 20, 4096, 3 << 20]))
        assert results == [True, True, True, True]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    # kubectl ends a port-forward by hanging up: the session's normal end, logged 101 (not
    # 499, the servers' word for a client that went away before its answer)
    wait_for(lambda: len(_records(node, "/portForward/")) > before, 30, "the session's record")
    assert [r["status"] for r in _records(node, "/portForward/")[before:]] == [101]


def _records(node: ClusterNode, path: str) -> list[dict[str, object]]:
    """The request log's records for ``path`` (written when each session ends)."""
    lines = [ln for ln in node.log().splitlines() if f'"path":"{path}' in ln]
    return [json.loads(ln[ln.index("{") :]) for ln in lines]


@pytest.mark.parametrize("kubectl", _kubectls(), ids=lambda p: "path" if "/usr" in p else "v1.20.2")
def test_kubectl_attach_and_logs_follow(
    cluster_node: tuple[ControlPlane, ClusterNode, Path], kubectl: str
) -> None:
    _cp, _node, admin = cluster_node
    marker = f"attached-{os.getpid()}-{len(kubectl)}"
    term = _Pty([kubectl, f"--kubeconfig={admin}", "attach", "-it", MIRROR, "-c", "term"], 24, 80)
    follow = subprocess.Popen(
        [kubectl, f"--kubeconfig={admin}", "logs", "-f", MIRROR, "-c", "term"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        term.type(f"tty; echo {marker}\r".encode())
        term.expect(rb"/dev/pts/\d+\r\n" + marker.encode())
        # the same output reaches the container log, which a follower sees as it is written
        assert follow.stdout is not None
        seen = b""
        deadline = time.monotonic() + 30
        while marker.encode() not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([follow.stdout], [], [], 1)
            if ready:
                seen += os.read(follow.stdout.fileno(), 65536)
        assert marker.encode() in seen
    finally:
        term.proc.terminate()
        term.close()
        follow.terminate()
        follow.wait(timeout=30)


@pytest.mark.parametrize("kubectl", _kubectls(), ids=lambda p: "path" if "/usr" in p else "v1.20.2")
def test_kubectl_logs_since_and_previous(
    cluster_node: tuple[ControlPlane, ClusterNode, Path], kubectl: str
) -> None:
    _cp, node, admin = cluster_node
    logs = [kubectl, f"--kubeconfig={admin}", "logs", MIRROR]

    def run(*a: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*logs, *a], capture_output=True, timeout=60)

    assert run("-c", "logger", "--since=1h").stdout.count(b"\n") == 50
    # the logger wrote its 50 lines at start and sleeps: soon none is younger than 1 s
    wait_for(lambda: run("-c", "logger", "--since=1s").stdout == b"", 30, "no recent lines")

    # --previous: the last terminated instance of a restarting container, while a newer one
    # runs (it lives 5 s; in back-off both would show the terminated one, as upstream)
    def restarted_and_running() -> bool:
        st = node.container("tty", "crasher") or {}
        return st.get("restartCount", 0) >= 1 and "running" in st.get("state", {})

    wait_for(restarted_and_running, 90, "the crasher running again")
    previous = run("-c", "crasher", "--previous")
    current = run("-c", "crasher")
    assert previous.returncode == 0, previous.stderr
    assert re.fullmatch(rb"run-\d+\n", previous.stdout), previous.stdout
    assert re.fullmatch(rb"run-\d+\n", current.stdout), current.stdout
    assert previous.stdout != current.stdout  # two instances, two random numbers

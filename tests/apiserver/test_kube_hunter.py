"""kube-hunter (Aqua Security, PyPI 0.6.8; ``scripts/kube-hunter.sh``) in passive mode against a
node-mode pykubelet.

kube-hunter only knows the fixed ports (10250 secure, 10255 read-only, and the control plane's).
Tests never take those on the host, so kube-hunter runs in a network namespace of the test's own
where 127.0.0.1:10250 (and 10255 when the node opens a read-only port) are relayed to the
node's ephemeral ports on the host's loopback. Nothing else listens there, so every finding is
about the node. The namespace also keeps kube-hunter's cloud lookup (a request to an Internet
service) from leaving the machine.

With the default node-mode configuration kube-hunter must find the Kubelet API and nothing
wrong with it; opening the read-only port, or anonymous requests with AlwaysAllow, must be
reported (so the first test can fail).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pykubelet.config.kubelet import KubeletConfiguration
from pykubelet.host.netns import socket_in_netns
from tests.apiserver.controlplane import ControlPlane
from tests.apiserver.kubelet import node_credentials, start_kubelet
from tests.conftest import free_port
from tests.e2e.node import Node, wait_for
from tests.podspec.netfix import netns
from tests.prereq import require, require_root

pytestmark = pytest.mark.root

KUBE_HUNTER = (
    Path(os.environ.get("PYKUBELET_KUBE_HUNTER_DIR", "/var/cache/pykubelet/kube-hunter"))
    / "bin"
    / "kube-hunter"
)
SECURE, READ_ONLY = 10250, 10255  # the ports kube-hunter probes for a kubelet


@contextlib.asynccontextmanager
async def _relay_into(netns_path: str, ports: dict[int, int]) -> AsyncIterator[None]:
    """Listen on 127.0.0.1:<key> inside ``netns_path``; relay each connection to
    127.0.0.1:<value> on the host."""

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
            if w.can_write_eof():
                w.write_eof()

    def handler(target: int) -> Any:
        async def serve(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
            try:
                tr, tw = await asyncio.open_connection("127.0.0.1", target)
            except OSError:
                cw.close()
                return
            try:
                await asyncio.gather(pipe(cr, tw), pipe(tr, cw))
            finally:
                tw.close()
                cw.close()

        return serve

    servers = []
    try:
        for inside, target in ports.items():
            sock = socket_in_netns(netns_path, 2)  # AF_INET
            sock.bind(("127.0.0.1", inside))
            servers.append(await asyncio.start_server(handler(target), sock=sock))
        yield
    finally:
        for s in servers:
            s.close()
            await s.wait_closed()


async def _hunt(ports: dict[int, int]) -> dict[str, Any]:
    """kube-hunter's JSON report on 127.0.0.1 seen from a namespace with ``ports`` relayed."""
    with netns("pkh", lo_up=True) as path:
        async with _relay_into(path, ports):
            proc = await asyncio.create_subprocess_exec(
                "ip",
                "netns",
                "exec",
                path.rsplit("/", 1)[-1],
                str(KUBE_HUNTER),
                "--remote",
                "127.0.0.1",
                "--report",
                "json",
                "--log",
                "none",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode(errors="replace")
    report: dict[str, Any] = json.loads(out)
    return report


@pytest.fixture
def hunter() -> None:
    require_root()
    require(KUBE_HUNTER.is_file(), f"needs kube-hunter in {KUBE_HUNTER} (scripts/kube-hunter.sh)")


@contextlib.contextmanager
def _node(cp: ControlPlane, base: Path, *flags: str) -> Iterator[Node]:
    """pykubelet in node mode with the default authentication and authorization (the test
    harness's own defaults, AlwaysAllow and no token webhook, are put back to the agent's),
    then ``flags``; one static pod."""
    defaults = KubeletConfiguration()
    kc = node_credentials(cp, base)
    node = start_kubelet(
        cp,
        base,
        "--kubeconfig",
        str(kc),
        "--authorization-mode",
        defaults.authorization.mode,
        f"--authentication-token-webhook={str(defaults.authentication.webhook.enabled).lower()}",
        *flags,
    )
    try:
        # a pod to find (kube-hunter's read-only hunter stops at an empty pod list)
        node.write_pod(
            "hunted",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: hunted, namespace: default}\n"
            "spec:\n  containers:\n  - {name: c, image: busybox, command: [sleep, '60']}\n",
        )
        wait_for(lambda: node.get("/pods").get("items"), 30, "the static pod in /pods")
        yield node
    finally:
        node.cleanup()


def test_default_node_mode_gives_kube_hunter_nothing(
    hunter: None, control_plane: ControlPlane, tmp_path: Path
) -> None:
    with _node(control_plane, tmp_path) as node:
        report = asyncio.run(_hunt({SECURE: node.port}))
    services = {(s["service"], s["location"]) for s in report["services"]}
    assert ("Kubelet API", f"127.0.0.1:{SECURE}") in services, report  # it did see the node
    assert report["vulnerabilities"] == [], json.dumps(report["vulnerabilities"], indent=1)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        pytest.param(("--read-only-port",), ("KHV052", READ_ONLY), id="read-only-port"),
        pytest.param(
            ("--anonymous-auth=true", "--authorization-mode", "AlwaysAllow"),
            ("KHV036", SECURE),
            id="anonymous-always-allow",
        ),
    ],
)
def test_kube_hunter_reports_an_opened_node(
    hunter: None,
    control_plane: ControlPlane,
    tmp_path: Path,
    flags: tuple[str, ...],
    expected: tuple[str, int],
) -> None:
    """KHV052 "Exposed Pods" on the read-only port; KHV036 "Anonymous Authentication"."""
    ports: dict[int, int] = {}
    if flags[0] == "--read-only-port":
        ro = free_port()
        flags = (*flags, str(ro))
        ports[READ_ONLY] = ro
    with _node(control_plane, tmp_path, *flags) as node:
        ports[SECURE] = node.port
        report = asyncio.run(_hunt(ports))
    found = {(v["vid"], v["location"]) for v in report["vulnerabilities"]}
    vid, port = expected
    assert (vid, f"127.0.0.1:{port}") in found, json.dumps(report, indent=1)

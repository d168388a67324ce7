"""Shared pytest fixtures. Ports are always ephemeral and addresses always loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    return free_port()


def _guard_present(iptables: str) -> bool:
    from pykubelet.network.localnet import guard_rule

    check = [iptables, "-w", "5", "-t", "filter", "-C", "INPUT", *guard_rule()]
    return subprocess.run(check, capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="session", autouse=True)
def _localnet_guard_left_as_found() -> Iterator[None]:
    """Host-port tests make agents add the kubelet's localnet guard rule to INPUT (it stays
    when an agent stops, as upstream's does). The test session removes it again if the host
    did not have it before, so a test run leaves the firewall as it found it."""
    iptables = shutil.which("iptables")
    before = iptables is not None and os.geteuid() == 0 and _guard_present(iptables)
    yield
    if iptables is None or os.geteuid() != 0 or before:
        return
    from pykubelet.network.localnet import guard_rule

    while _guard_present(iptables):
        delete = [iptables, "-w", "5", "-t", "filter", "-D", "INPUT", *guard_rule()]
        if subprocess.run(delete, capture_output=True, check=False).returncode != 0:
            break

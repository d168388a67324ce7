"""Shared pytest fixtures. Ports are always ephemeral and addresses always loopback."""

from __future__ import annotations

import os
import shlex
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


_PORTMAP_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK")


def _nat_rules(iptables: str) -> list[str]:
    out = subprocess.run(
        [iptables, "-w", "5", "-t", "nat", "-S"], capture_output=True, text=True, check=False
    )
    return out.stdout.splitlines()


def _remove_portmap_scaffolding(iptables: str) -> None:
    """portmap creates its shared chains (and jumps to them) on first use and never removes
    them; once no pod's rules are left in them, remove what the session created."""
    rules = _nat_rules(iptables)
    if any(r.startswith("-A CNI-DN-") or r.startswith("-N CNI-DN-") for r in rules):
        return  # some pod's host ports are still mapped: not ours to touch
    for rule in rules:
        parts = shlex.split(rule)  # comments hold spaces, quoted
        if parts[:1] == ["-A"] and parts[-1] in _PORTMAP_CHAINS and parts[1] not in _PORTMAP_CHAINS:
            delete = [iptables, "-w", "5", "-t", "nat", "-D", *parts[1:]]
            subprocess.run(delete, capture_output=True, check=False)
    for chain in _PORTMAP_CHAINS:
        for flag in ("-F", "-X"):
            cmd = [iptables, "-w", "5", "-t", "nat", flag, chain]
            subprocess.run(cmd, capture_output=True, check=False)


@pytest.fixture(scope="session", autouse=True)
def _firewall_left_as_found() -> Iterator[None]:
    """Host-port tests make agents add the kubelet's localnet guard rule to INPUT (it stays
    when an agent stops, as upstream's does) and make portmap create its shared nat chains.
    The session removes what the host did not have before, so a test run leaves the firewall
    as it found it."""
    iptables = shutil.which("iptables")
    root = iptables is not None and os.geteuid() == 0
    before = root and _guard_present(iptables)  # type: ignore[arg-type]
    chains_before = root and any(
        r.split()[:2] == ["-N", _PORTMAP_CHAINS[0]]
        for r in _nat_rules(iptables)  # type: ignore[arg-type]
    )
    yield
    if iptables is None or not root:
        return
    if not chains_before:
        _remove_portmap_scaffolding(iptables)
    if before:
        return
    from pykubelet.network.localnet import guard_rule

    while _guard_present(iptables):
        delete = [iptables, "-w", "5", "-t", "filter", "-D", "INPUT", *guard_rule()]
        if subprocess.run(delete, capture_output=True, check=False).returncode != 0:
            break

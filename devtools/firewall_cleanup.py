"""Leaving the firewall as it was found: for tests and benchmarks, never the agent.

Mapping a host port leaves two things on the host that outlive every pod, on purpose: the
kubelet's localnet guard rule (``localnet.py``; the kubelet keeps its KUBE-FIREWALL too) and
portmap's shared nat chains, which the plugin creates on first use and never removes (as with
containerd). ``firewall_left_as_found()`` removes them on exit when they were not there on
entry and no pod's host ports are mapped any more. Blocking (iptables execs).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator

from pykubelet.network.localnet import guard_rule

__all__ = ["PORTMAP_CHAINS", "firewall_left_as_found"]

PORTMAP_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK")


def _nat_rules(iptables: str) -> list[str]:
    out = subprocess.run(
        [iptables, "-w", "5", "-t", "nat", "-S"], capture_output=True, text=True, check=False
    )
    return out.stdout.splitlines()


def portmap_chains_exist(iptables: str) -> bool:
    """Whether portmap's shared nat chains exist (blocking: one iptables exec)."""
    return any(shlex.split(r)[:2] == ["-N", PORTMAP_CHAINS[0]] for r in _nat_rules(iptables))


def remove_unused_portmap_chains(iptables: str) -> bool:
    """Remove portmap's shared nat chains and the jumps to them, which the plugin creates on
    first use and never removes, if no pod's host ports are mapped any more. The agent keeps
    them, as containerd does; tests and benchmarks leave a machine as they found it. Blocking.
    Returns whether they were removed."""
    rules = _nat_rules(iptables)
    if any(r.startswith(("-A CNI-DN-", "-N CNI-DN-")) for r in rules):
        return False  # some pod's host ports are still mapped
    for rule in rules:
        parts = shlex.split(rule)  # comments hold spaces, quoted
        if parts[:1] == ["-A"] and parts[-1] in PORTMAP_CHAINS and parts[1] not in PORTMAP_CHAINS:
            subprocess.run(
                [iptables, "-w", "5", "-t", "nat", "-D", *parts[1:]],
                capture_output=True,
                check=False,
            )
    for chain in PORTMAP_CHAINS:
        for flag in ("-F", "-X"):
            subprocess.run(
                [iptables, "-w", "5", "-t", "nat", flag, chain], capture_output=True, check=False
            )
    return True


def _guard_present(iptables: str) -> bool:
    check = [iptables, "-w", "5", "-t", "filter", "-C", "INPUT", *guard_rule()]
    return subprocess.run(check, capture_output=True, check=False).returncode == 0


def _remove_guard(iptables: str) -> None:
    while _guard_present(iptables):
        delete = [iptables, "-w", "5", "-t", "filter", "-D", "INPUT", *guard_rule()]
        if subprocess.run(delete, capture_output=True, check=False).returncode != 0:
            return


@contextlib.contextmanager
def firewall_left_as_found(iptables: str = "iptables") -> Iterator[None]:
    """Undo, on exit, the host-port leftovers that were not there on entry (root only)."""
    exe = shutil.which(iptables)
    if exe is None or os.geteuid() != 0:
        yield
        return
    guard_before, chains_before = _guard_present(exe), portmap_chains_exist(exe)
    try:
        yield
    finally:
        if not chains_before:
            remove_unused_portmap_chains(exe)
        if not guard_before:
            _remove_guard(exe)

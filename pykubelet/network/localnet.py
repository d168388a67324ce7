"""The localnet guard: what keeps ``route_localnet`` from opening the node's 127.0.0.1 to pods.

portmap with ``snat: true`` sets ``net.ipv4.conf.<bridge>.route_localnet=1`` so that
127.0.0.1:<hostPort> can be DNATed to a pod. That sysctl also lets a pod (with CAP_NET_RAW or
its own routes) send packets to 127.0.0.1 over the bridge and reach services the node binds to
loopback only (CVE-2020-8558). The kubelet closes it (``kubelet_network_linux.go``: "block
incoming localnet connections" in ``KUBE-FIREWALL``); we add the same rule, under a comment of
our own, to the filter table's INPUT chain before the first host port is mapped:
drop packets to 127.0.0.0/8 whose source is not 127.0.0.0/8, unless conntrack already knows
them (replies, and the DNATed host-port connections themselves). The rule is kept when the agent
stops, as the kubelet keeps its own.
"""

from __future__ import annotations

import asyncio
import logging
import shutil

from pykubelet.network.types import NetworkError

__all__ = ["GUARD_COMMENT", "LocalnetGuard", "guard_rule"]

log = logging.getLogger(__name__)

GUARD_COMMENT = "pykubelet: block incoming localnet connections"


def guard_rule() -> tuple[str, ...]:
    """The rule's match and target, as ``iptables -A INPUT`` takes them."""
    return (
        "!",
        "-s",
        "127.0.0.0/8",
        "-d",
        "127.0.0.0/8",
        "-m",
        "comment",
        "--comment",
        GUARD_COMMENT,
        "-m",
        "conntrack",
        "!",
        "--ctstate",
        "RELATED,ESTABLISHED,DNAT",
        "-j",
        "DROP",
    )


async def _iptables(exe: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        exe,
        "-w",
        "5",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    return proc.returncode or 0, err.decode(errors="replace").strip()


class LocalnetGuard:
    """``ensure()`` before mapping a host port: checks once per agent (one ``iptables -C``
    exec), inserts the rule when it is missing."""

    def __init__(self, iptables: str = "iptables") -> None:
        self._iptables = iptables
        self._done = False
        self._lock = asyncio.Lock()

    async def ensure(self) -> None:
        if self._done:
            return
        async with self._lock:
            if self._done:
                return
            exe = shutil.which(self._iptables)
            if exe is None:
                raise NetworkError(
                    f"host ports need {self._iptables!r} (Debian package iptables) on PATH"
                )
            rule = guard_rule()
            code, _ = await _iptables(exe, "-t", "filter", "-C", "INPUT", *rule)
            if code != 0:
                code, err = await _iptables(exe, "-t", "filter", "-I", "INPUT", "1", *rule)
                if code != 0:
                    raise NetworkError(f"could not add the localnet guard rule: {err}")
                log.info("added the iptables rule %r (INPUT)", GUARD_COMMENT)
            self._done = True

"""Network namespaces and a private bridge for the built-in network's tests (root only).

A namespace is an ``unshare -n sleep`` child of the test (path ``/proc/<pid>/ns/net``), killed
by pid afterwards; a bridge is ``pkt<hex>`` on a 10.99.x.0/24 subnet no host interface uses,
deleted afterwards with every host veth the test's network made, even when the test fails.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

from pykubelet.network import BridgeNetwork, host_veth_name


@dataclass
class Namespace:
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def path(self) -> str:
        return f"/proc/{self.proc.pid}/ns/net"

    def run(self, *argv: str, timeout_s: float = 20) -> subprocess.CompletedProcess[str]:
        """A command inside this namespace (``nsenter -t PID -n``)."""
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-n", *argv],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def _own_netns(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    except OSError:
        return False


@contextmanager
def namespaces(count: int) -> Iterator[list[Namespace]]:
    """``count`` fresh network namespaces with ``lo`` up (as the sandbox holder leaves them)."""
    made: list[Namespace] = []
    try:
        for _ in range(count):
            proc = subprocess.Popen(
                ["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 600"]
            )
            made.append(Namespace(proc))
        deadline = time.monotonic() + 10
        for ns in made:
            while not (_own_netns(ns.pid) and _lo_up(ns)):
                if ns.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"namespace child {ns.pid} did not come up")
                time.sleep(0.01)
        yield made
    finally:
        for ns in made:
            ns.kill()


def _lo_up(ns: Namespace) -> bool:
    return "UP" in ns.run("ip", "-o", "link", "show", "lo").stdout.split(">")[0]


def _used_subnets() -> set[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    used = set()
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            iface = ipaddress.IPv4Interface(parts[parts.index("inet") + 1])
            used.add(str(ipaddress.IPv4Network(f"{iface.ip}/24", strict=False)))
    return used


class BridgeOptions(TypedDict, total=False):
    """``BridgeNetwork`` keywords a test may set beyond the bridge's own name and subnet."""

    max_workers: int
    cni_bin_dir: str


@dataclass
class PrivateBridge:
    name: str
    subnet: str
    prefix: str  # "10.99.17."
    state_dir: Path

    def network(self, **kwargs: Unpack[BridgeOptions]) -> BridgeNetwork:
        return BridgeNetwork(
            state_dir=str(self.state_dir), bridge=self.name, subnet=self.subnet, **kwargs
        )


@contextmanager
def private_bridge(tmp: Path, *, prefix_len: int = 24) -> Iterator[PrivateBridge]:
    name = f"pkt{secrets.token_hex(3)}"
    used = _used_subnets()
    for _ in range(100):
        third = secrets.randbelow(256)
        if f"10.99.{third}.0/24" not in used:
            break
    subnet = f"10.99.{third}.0/{prefix_len}"
    state = tmp / f"net-{secrets.token_hex(3)}"
    try:
        yield PrivateBridge(name=name, subnet=subnet, prefix=f"10.99.{third}.", state_dir=state)
    finally:
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
        addresses = state / "addresses"
        if addresses.is_dir():
            for record in addresses.iterdir():
                sid = record.read_text().strip()
                if sid:
                    subprocess.run(
                        ["ip", "link", "del", host_veth_name(sid)], check=False, capture_output=True
                    )


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def ping(ns: Namespace, address: str) -> bool:
    """One ICMP echo from inside ``ns`` (busybox ping), 5 s at most."""
    r = ns.run("/bin/busybox", "ping", "-c", "1", "-W", "5", address)
    return r.returncode == 0


def ip(*args: str, check: bool = False) -> str:
    """``ip ARGS`` in the host namespace; its stdout."""
    r = subprocess.run(["ip", *args], capture_output=True, text=True, check=check)
    return r.stdout

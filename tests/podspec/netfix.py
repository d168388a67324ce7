"""Helpers for tests that need network namespaces and a private CNI network (root only)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pykubelet.network import ConfList, default_conflist


@dataclass(frozen=True)
class TestNet:
    conf: ConfList
    bridge: str
    subnet_prefix: str  # "10.88.123."
    data_dir: Path


@contextmanager
def netns(prefix: str = "pks", *, lo_up: bool = False) -> Iterator[str]:
    """A named network namespace (``/run/netns/<name>``), deleted afterwards."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    if lo_up:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@contextmanager
def private_network(tmp: Path) -> Iterator[TestNet]:
    """A bridge and subnet of this test's own, so parallel tests never share addresses."""
    token = secrets.token_hex(3)
    bridge = f"pkt{token}"
    third = 100 + secrets.randbelow(150)
    data_dir = tmp / "cni-networks"
    conf = default_conflist(bridge=bridge, subnet=f"10.88.{third}.0/24", data_dir=str(data_dir))
    try:
        yield TestNet(conf=conf, bridge=bridge, subnet_prefix=f"10.88.{third}.", data_dir=data_dir)
    finally:
        subprocess.run(["ip", "link", "del", bridge], check=False, capture_output=True)


def link_exists(netns_path: str, ifname: str) -> bool:
    name = netns_path.rsplit("/", 1)[-1]
    r = subprocess.run(["ip", "-n", name, "link", "show", ifname], capture_output=True)
    return r.returncode == 0

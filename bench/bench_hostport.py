"""The start cost of a host port: pod network set-up with and without a ``hostPort``.

For each variant, N fresh network namespaces (``unshare -n`` children with ``lo`` up, as the
sandbox holder leaves them) are attached **one after another** (a pod's start latency), then
released one after another. Printed per variant and phase: the median and p90 wall time per pod,
and CPU per pod of this process and of the children it reaped (the plugins, iptables).
Variants:

- ``cni, no portmap``: loopback + bridge + host-local (the default conflist before host ports);
- ``cni, no hostPort``: the default conflist (portmap chained; it runs and does nothing);
- ``cni, hostPort``: the same with one mapping 127.0.0.1:<port> -> 80;
- ``built-in, no hostPort`` / ``built-in, hostPort``: ``BridgeNetwork``, whose hook runs portmap
  only for pods with a host port.

Each variant gets a bridge and 10.99.x.0/24 subnet of its own, deleted afterwards. Root only.

    .venv/bin/python bench/bench_hostport.py [--pods 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from netns_children import cpu, start_namespaces, stop

from devtools.firewall_cleanup import firewall_left_as_found
from pykubelet.network import (
    BridgeNetwork,
    CniNetwork,
    ConfList,
    SandboxNetworkRef,
    default_conflist,
)
from pykubelet.runtime.types import PortMapping

CNI_BIN = "/usr/lib/cni"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make(kind: str, bridge: str, subnet: str, state: Path) -> BridgeNetwork | CniNetwork:
    if kind.startswith("built-in"):
        return BridgeNetwork(state_dir=str(state), bridge=bridge, subnet=subnet)
    conf = default_conflist(bridge=bridge, subnet=subnet, data_dir=str(state / "ipam"))
    if kind == "cni, no portmap":
        conf = ConfList(name=conf.name, cni_version=conf.cni_version, plugins=conf.plugins[:1])
    return CniNetwork(state_dir=str(state), conf_dir="", bin_dir=CNI_BIN, default=conf)


async def run_one(kind: str, pods: int, tmp: Path) -> list[tuple[str, list[float], float, float]]:
    bridge = f"pkh{secrets.token_hex(3)}"
    subnet = f"10.99.{secrets.randbelow(256)}.0/24"
    net = make(kind, bridge, subnet, tmp / f"{bridge}")
    procs = start_namespaces(pods)
    rows = []
    try:
        refs = []
        for i, p in enumerate(procs):
            mappings: tuple[PortMapping, ...] = (PortMapping(container_port=80),)
            if kind.endswith(", hostPort"):
                mappings = (
                    PortMapping(container_port=80, host_port=free_port(), host_ip="127.0.0.1"),
                )
            refs.append(
                SandboxNetworkRef(
                    sandbox_id=secrets.token_hex(32),
                    netns_path=f"/proc/{p.pid}/ns/net",
                    namespace="bench",
                    name=f"p{i}",
                    uid=str(i),
                    port_mappings=mappings,
                )
            )
        steps: tuple[tuple[str, Callable[[SandboxNetworkRef], Awaitable[object]]], ...] = (
            ("setup", lambda r: net.attach(r)),
            ("teardown", lambda r: net.teardown(r.sandbox_id)),
        )
        for name, call in steps:
            walls = []
            c0, k0 = cpu()
            for r in refs:
                t0 = time.perf_counter()
                await call(r)
                walls.append(time.perf_counter() - t0)
            c1, k1 = cpu()
            rows.append((name, walls, (c1 - c0) / pods, (k1 - k0) / pods))
    finally:
        stop(procs, bridge)
        if hasattr(net, "close"):
            net.close()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--pods", type=int, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        raise SystemExit("needs root and iptables")
    kinds = [
        "cni, no portmap",
        "cni, no hostPort",
        "cni, hostPort",
        "built-in, no hostPort",
        "built-in, hostPort",
    ]
    print(f"{args.pods} pods, one after another\n")
    print(
        f"{'network':<22} {'phase':<9} {'median ms':>9} {'p90 ms':>7} "
        f"{'agent CPU ms':>12} {'child CPU ms':>12}"
    )
    with firewall_left_as_found(), tempfile.TemporaryDirectory(prefix="bench-hostport-") as d:
        for kind in kinds:
            for phase, walls, agent, child in await run_one(kind, args.pods, Path(d)):
                walls.sort()
                p90 = walls[min(len(walls) - 1, int(len(walls) * 0.9))]
                print(
                    f"{kind:<22} {phase:<9} {statistics.median(walls) * 1000:>9.1f} "
                    f"{p90 * 1000:>7.1f} {agent * 1000:>12.1f} {child * 1000:>12.1f}"
                )


if __name__ == "__main__":
    asyncio.run(main())

"""Pod network set-up for N namespaces at once: the built-in network vs the CNI default conflist.

For each network, N fresh network namespaces (``unshare -n`` children with ``lo`` up, as the
sandbox holder leaves them) are attached concurrently, then released concurrently. Printed per
phase: wall time, CPU seconds of this process (the agent's share: every thread) and of the
children it reaped (the CNI plugins), and per-pod CPU. Each network gets a bridge and a
10.99.x.0/24 subnet of its own, deleted afterwards. Root only.

    .venv/bin/python bench/bench_network.py [--pods 110] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from netns_children import cpu, start_namespaces, stop

from pykubelet.network import (
    BridgeNetwork,
    CniNetwork,
    SandboxNetworkRef,
    default_conflist,
)

CNI_BIN = "/usr/lib/cni"


async def phase(jobs: list[Callable[[], Awaitable[object]]]) -> tuple[float, float, float]:
    c0, k0 = cpu()
    t0 = time.perf_counter()
    await asyncio.gather(*(j() for j in jobs))
    wall = time.perf_counter() - t0
    c1, k1 = cpu()
    return wall, c1 - c0, k1 - k0


async def run_one(kind: str, pods: int, tmp: Path) -> list[tuple[str, float, float, float]]:
    bridge = f"pkb{secrets.token_hex(3)}"
    subnet = f"10.99.{secrets.randbelow(256)}.0/24"
    state = tmp / f"{kind}-{bridge}"
    net: BridgeNetwork | CniNetwork
    if kind == "built-in":
        net = BridgeNetwork(state_dir=str(state), bridge=bridge, subnet=subnet)
    else:
        conf = default_conflist(bridge=bridge, subnet=subnet, data_dir=str(state / "ipam"))
        net = CniNetwork(state_dir=str(state), conf_dir="", bin_dir=CNI_BIN, default=conf)
    procs = start_namespaces(pods)
    rows = []
    try:
        refs = [
            SandboxNetworkRef(
                sandbox_id=secrets.token_hex(32),
                netns_path=f"/proc/{p.pid}/ns/net",
                namespace="bench",
                name=f"p{i}",
                uid=str(i),
            )
            for i, p in enumerate(procs)
        ]
        setup = await phase([lambda r=r: net.attach(r) for r in refs])  # type: ignore[misc]
        rows.append(("setup", *setup))
        down = await phase([lambda r=r: net.teardown(r.sandbox_id) for r in refs])  # type: ignore[misc]
        rows.append(("teardown", *down))
    finally:
        stop(procs, bridge)
        if isinstance(net, BridgeNetwork):
            net.close()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pods", type=int, default=110)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, bridges)")
    tmp = Path(tempfile.mkdtemp(prefix="pykubelet-bench-net-"))
    print(f"{args.pods} namespaces at once, {os.cpu_count()} CPUs")
    print(
        f"{'network':<10} {'round':>5} {'phase':<9} {'wall s':>7} {'agent CPU s':>11} "
        f"{'plugin CPU s':>12} {'CPU ms/pod':>10}"
    )
    try:
        for rnd in range(1, args.rounds + 1):
            for kind in ("built-in", "CNI"):
                for ph, wall, me, kids in await run_one(kind, args.pods, tmp):
                    per_pod = (me + kids) * 1000 / args.pods
                    print(
                        f"{kind:<10} {rnd:>5} {ph:<9} {wall:>7.3f} {me:>11.3f} {kids:>12.3f} "
                        f"{per_pod:>10.2f}"
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())

"""Benchmark image pulls on the process runtime: a ~50 MB image (busybox plus 48 MiB of
incompressible data, gzip'd layers) from Debian's docker-registry on 127.0.0.1.

Rows: a cold pull (download, verify, unpack), a re-pull of a present image (what
``imagePullPolicy: Always`` costs when nothing changed), and pull + start of a container until
it runs (root; on a runtime root that has started a container before, so the one-time helper
build is not counted). ``skopeo copy`` of the same image to a local directory (download and
verify, no unpack) is the reference. Median of ``--runs`` runs, each on a fresh store.
Loopback only.

    sudo .venv/bin/python bench/bench_pull.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pykubelet.runtime import ContainerConfig, ContainerState, SandboxConfig  # noqa: E402
from pykubelet.runtime.process import ProcessRuntime  # noqa: E402
from tests.images.oci import Layout, busybox_layer, tar_layer  # noqa: E402
from tests.images.registry import start_registry  # noqa: E402

DATA_BYTES = 48 * 1024 * 1024


def _image(base: Path) -> tuple[Path, int]:
    lay = Layout(base / "layout")
    blob = tar_layer({"data/random.bin": os.urandom(DATA_BYTES)})
    layers = [busybox_layer(), blob, tar_layer({"etc/motd": b"bench\n" * 1000})]
    lay.tag(lay.image(layers, cmd=("sleep", "3600")), "big")
    return lay.path, sum(len(x) for x in layers)


async def _pull(root: Path, ref: str) -> tuple[float, float]:
    rt = ProcessRuntime(root)
    t = time.perf_counter()
    await rt.pull_image(ref)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    await rt.pull_image(ref)
    return cold, time.perf_counter() - t


async def _pull_and_start(root: Path, ref: str, logs: Path) -> float:
    cg = f"pykubelet-bench-{secrets.token_hex(4)}"
    rt = ProcessRuntime(root, cgroup_root=cg)
    sc = SandboxConfig(
        name="b", namespace="bench", uid=secrets.token_hex(8), hostname="b", log_directory=str(logs)
    )
    t = time.perf_counter()
    try:
        await rt.pull_image(ref)
        sid = await rt.run_pod_sandbox(sc)
        cfg = ContainerConfig(name="c", image=ref, command=("sleep", "3600"), log_path="c/0.log")
        cid = await rt.create_container(sid, cfg, sc)
        await rt.start_container(cid)
        elapsed = time.perf_counter() - t
        state = (await rt.container_status(cid)).state
        assert state is ContainerState.RUNNING, state  # start_container returns once it runs
        return elapsed
    finally:
        for s in await rt.list_pod_sandboxes():
            await rt.remove_pod_sandbox(s.id)
        for c in await rt.list_containers():
            await rt.remove_container(c.id)
        await rt.remove_image(ref)  # the next run pulls again, on a runtime already set up
        rt.close()
        for d in rt.cgroups.dirs(cg):
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                sub.rmdir()
            if d.exists():
                d.rmdir()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp:
        base = Path(tmp)
        layout, size = _image(base)
        reg = start_registry(base / "registry")
        try:
            reg.push_oci(layout, "big", "bench/big:1")
            ref = f"{reg.host}/bench/big:1"
            rows: dict[str, list[float]] = {
                "skopeo copy (reference)": [],
                "cold pull": [],
                "re-pull, unchanged": [],
                "pull + start": [],
            }
            for i in range(a.runs):
                dest = base / f"skopeo-{i}"
                t = time.perf_counter()
                subprocess.run(
                    [
                        "skopeo",
                        "--insecure-policy",
                        "copy",
                        "--quiet",
                        "--src-tls-verify=false",
                        f"docker://{ref}",
                        f"dir:{dest}",
                    ],
                    check=True,
                )
                rows["skopeo copy (reference)"].append(time.perf_counter() - t)
                shutil.rmtree(dest)
                cold, warm = asyncio.run(_pull(base / f"root-{i}", ref))
                rows["cold pull"].append(cold)
                rows["re-pull, unchanged"].append(warm)
                shutil.rmtree(base / f"root-{i}")
                if os.geteuid() == 0:
                    if i == 0:  # the first start in a root builds the runtime's helper: untimed
                        asyncio.run(_pull_and_start(base / "rs", ref, base / "logs-warm"))
                    rows["pull + start"].append(
                        asyncio.run(_pull_and_start(base / "rs", ref, base / f"logs-{i}"))
                    )
        finally:
            reg.stop()
    print(f"image: {size / 1e6:.1f} MB uncompressed, 3 gzip'd layers; median of {a.runs} runs")
    print(f"{'':28} {'seconds':>9} {'MB/s':>8}")
    for name, values in rows.items():
        if not values:
            print(f"{name:28} {'(needs root)':>9}")
            continue
        s = statistics.median(values)
        rate = f"{size / 1e6 / s:8.0f}" if "re-pull" not in name else f"{'':>8}"
        print(f"{name:28} {s:9.3f} {rate}")


if __name__ == "__main__":
    main()

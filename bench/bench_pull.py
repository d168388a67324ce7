"""Benchmark image pulls on both runtimes: a ~50 MB image (busybox plus 48 MiB of
incompressible data, gzip'd layers) from Debian's docker-registry on 127.0.0.1.

Rows per runtime: a cold pull (download, verify, unpack), a re-pull of a present image (what
``imagePullPolicy: Always`` costs when nothing changed), and pull + start of a container until
it runs (root; the process runtime on a root that has started a container before, so the
one-time helper build is not counted; containerd with its sandbox image imported). The process
runtime pulls into a fresh store each run; containerd (a private daemon, ``devtools.containerd``,
driven over CRI by ``CriRuntime``) has the image removed between runs (CRI ``RemoveImage``
collects its content synchronously, so the next pull is cold: checked). ``skopeo copy`` of the
same image to a local directory (download and verify, no unpack) is the reference. Median of
``--runs`` runs. Loopback only.

    sudo .venv/bin/python bench/bench_pull.py [--runs 3] [--runtimes process,containerd]
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

from devtools.busybox_image import build_pause_image  # noqa: E402
from devtools.cgroup_tree import remove_cgroup_dirs  # noqa: E402
from devtools.containerd import PAUSE_REF, Containerd  # noqa: E402
from pykubelet.runtime import ContainerConfig, ContainerState, SandboxConfig  # noqa: E402
from pykubelet.runtime.cri import CriRuntime  # noqa: E402
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
        remove_cgroup_dirs(rt.cgroups.dirs(cg))


async def _containerd_runs(
    c: Containerd, ref: str, runs: int, logs: Path, rows: dict[str, list[float]]
) -> None:
    rt = CriRuntime(f"unix://{c.socket}")
    await rt.start()
    try:
        for i in range(runs):
            layers_before = _content_blobs(c)
            t = time.perf_counter()
            await rt.pull_image(ref)
            rows["containerd: cold pull"].append(time.perf_counter() - t)
            # cold: the image's own blobs (manifest, config, 3 layers) were not there before
            assert len(_content_blobs(c) - layers_before) >= 5, "containerd pull was not cold"
            t = time.perf_counter()
            await rt.pull_image(ref)
            rows["containerd: re-pull, unchanged"].append(time.perf_counter() - t)
            await rt.remove_image(ref)
            sc = SandboxConfig(
                name="b",
                namespace="bench",
                uid=secrets.token_hex(8),
                hostname="b",
                log_directory=str(logs / f"cri-{i}"),
                cgroup_parent=f"{c.cgroup_parent}/podbench{i}",
            )
            t = time.perf_counter()
            await rt.pull_image(ref)
            sid = await rt.run_pod_sandbox(sc)
            cfg = ContainerConfig(
                name="c", image=ref, command=("sleep", "3600"), log_path="c/0.log"
            )
            cid = await rt.create_container(sid, cfg, sc)
            await rt.start_container(cid)
            rows["containerd: pull + start"].append(time.perf_counter() - t)
            state = (await rt.container_status(cid)).state
            assert state is ContainerState.RUNNING, state
            await rt.stop_pod_sandbox(sid)
            await rt.remove_pod_sandbox(sid)
            await rt.remove_image(ref)
    finally:
        await rt.aclose()


def _content_blobs(c: Containerd) -> set[str]:
    return set(c.ctr("content", "ls", "-q").stdout.split())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--runtimes", default="process,containerd")
    a = p.parse_args()
    runtimes = a.runtimes.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp:
        base = Path(tmp)
        layout, size = _image(base)
        reg = start_registry(base / "registry")
        try:
            reg.push_oci(layout, "big", "bench/big:1")
            ref = f"{reg.host}/bench/big:1"
            rows: dict[str, list[float]] = {"skopeo copy (reference)": []}
            if "process" in runtimes:
                rows.update({"cold pull": [], "re-pull, unchanged": [], "pull + start": []})
            if "containerd" in runtimes:
                for row in ("cold pull", "re-pull, unchanged", "pull + start"):
                    rows[f"containerd: {row}"] = []
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
                if "process" not in runtimes:
                    continue
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
            if "containerd" in runtimes and os.geteuid() == 0:
                c = Containerd(base / "containerd").start()
                try:
                    c.import_image(build_pause_image(base / "pause.tar", PAUSE_REF))
                    c.plain_http_registry(reg.host)
                    asyncio.run(_containerd_runs(c, ref, a.runs, base / "cri-logs", rows))
                finally:
                    c.stop()
        finally:
            reg.stop()
    print(f"image: {size / 1e6:.1f} MB uncompressed, 3 gzip'd layers; median of {a.runs} runs")
    print(f"{'':34} {'seconds':>9} {'MB/s':>8}")
    for name, values in rows.items():
        if not values:
            print(f"{name:34} {'(needs root)':>9}")
            continue
        s = statistics.median(values)
        rate = f"{size / 1e6 / s:8.0f}" if "re-pull" not in name else f"{'':>8}"
        print(f"{name:34} {s:9.3f} {rate}")


if __name__ == "__main__":
    main()

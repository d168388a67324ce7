"""Image GC (pods/image_gc.py): the threshold arithmetic on the FakeRuntime (where the filesystem
numbers can be set), and on the process runtime with images pulled from a real registry and a
real container using one of them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pykubelet.core.clock import FakeClock
from pykubelet.pods.image_gc import ImageGC
from pykubelet.runtime import ContainerConfig, ImageFsUsage
from pykubelet.runtime.fake import FakeRuntime
from pykubelet.runtime.process import ProcessRuntime
from tests.images.registry import Registry
from tests.prereq import require_root
from tests.runtime.conftest import make_runtime, sandbox_config

__all__ = ["make_runtime"]  # the fixture, used below


def _is_dir(path: str) -> bool:
    return os.path.isdir(path)


async def test_thresholds_and_least_recently_used_first() -> None:
    clock = FakeClock()
    rt = FakeRuntime(clock)
    rt.image_sizes.update({"old:1": 60, "recent:1": 60, "third:1": 60, "used:1": 500})
    gc = ImageGC(rt, rt, clock, high_percent=85, low_percent=80, minimum_age_s=120)
    for ref in ("old:1", "recent:1", "third:1", "used:1"):
        await rt.pull_image(ref)
    # "recent" was used by a container that has gone since; "used" has a container now
    sid = await rt.run_pod_sandbox(sandbox_config())
    cid = await rt.create_container(
        sid, ContainerConfig(name="a", image="recent:1"), sandbox_config()
    )
    await gc.detect()
    await rt.remove_container(cid)
    await clock.advance(60)
    await rt.create_container(sid, ContainerConfig(name="b", image="used:1"), sandbox_config())
    rt.image_fs = ImageFsUsage(capacity_bytes=1000, available_bytes=160, images_bytes=680)
    # 84% used: below the high threshold
    assert (await gc.collect()).removed == ()
    rt.image_fs = ImageFsUsage(capacity_bytes=1000, available_bytes=100, images_bytes=680)
    # 90% used, but every image is younger than imageMinimumGCAge
    young = await gc.collect()
    assert young.wanted_bytes == 100 and young.removed == ()
    await clock.advance(61)
    ids = {}
    for ref in ("old:1", "recent:1", "third:1", "used:1"):
        info = await rt.image_status(ref)
        assert info is not None
        ids[ref] = info.id
    # to 80%: 1000 * 20% - 100 = 100 bytes: two 60-byte images. "old" and "third" were never
    # used, so they go before "recent"; "used" has a container and never goes
    result = await gc.collect()
    assert result.wanted_bytes == 100 and result.freed_bytes == 120
    assert set(result.removed) == {ids["old:1"], ids["third:1"]}
    assert await rt.image_status("recent:1") is not None  # used more recently: kept
    assert await rt.image_status("used:1") is not None
    assert await rt.image_status("old:1") is None


async def test_gc_on_the_process_runtime_keeps_images_in_use(
    make_runtime: Callable[..., ProcessRuntime], plain_registry: Registry, tmp_path: Path
) -> None:
    require_root()
    rt = make_runtime()
    used = f"{plain_registry.host}/test/busybox:1.0"
    unused = f"{plain_registry.host}/test/sleeper:1.0"
    used_id = await rt.pull_image(used)
    unused_id = await rt.pull_image(unused)
    sc = sandbox_config(log_directory=str(tmp_path / "logs"))
    sid = await rt.run_pod_sandbox(sc)
    cfg = ContainerConfig(name="c", image=used, command=("sleep", "60"), log_path="c/0.log")
    cid = await rt.create_container(sid, cfg, sc)
    await rt.start_container(cid)
    # 1% high, 0% low: any real filesystem is over it, and everything unused must go
    gc = ImageGC(rt, rt, FakeClock(), high_percent=1, low_percent=0, minimum_age_s=0)
    result = await gc.collect()
    assert result.removed == (unused_id,)
    assert await rt.image_status(unused) is None
    info = await rt.image_status(used)
    assert info is not None and info.id == used_id and _is_dir(info.rootfs_path)
    assert not _is_dir(str(rt.layout.images / "rootfs" / unused_id.removeprefix("sha256:")))
    # still running on its image
    assert (await rt.container_status(cid)).state.value == "CONTAINER_RUNNING"

"""The ``ImageService`` contract (pull, status, list, remove, filesystem use): the FakeRuntime and
the process runtime (pulling from a real docker-registry) behave alike, so pod-layer tests on
the fake hold on the real runtimes. A CRI implementation joins by adding a param."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykubelet.core.clock import FakeClock
from pykubelet.runtime import ImageNotFound, ImageService
from pykubelet.runtime.fake import FakeRuntime
from pykubelet.runtime.process import ProcessRuntime

ImageContract = tuple[ImageService, str, str]  # service, a pullable ref, a missing ref


@pytest.fixture(params=["fake", "process"])
async def images(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ImageContract]:
    if request.param == "fake":
        fake = FakeRuntime(FakeClock())
        fake.hide_image("example.com/missing:1")
        yield fake, "example.com/app:1", "example.com/missing:1"
    else:
        reg = request.getfixturevalue("plain_registry")
        rt = ProcessRuntime(tmp_path / "root")
        yield rt, f"{reg.host}/test/busybox:1.0", f"{reg.host}/test/missing:1"


async def test_pull_status_list_remove(images: ImageContract) -> None:
    svc, ref, _missing = images
    image_id = await svc.pull_image(ref)
    assert image_id.startswith("sha256:")
    info = await svc.image_status(ref)
    assert info is not None and info.id == image_id and info.size_bytes > 0
    assert await svc.image_status(image_id) == info  # by id too
    assert [i.id for i in await svc.list_images()] == [image_id]
    assert await svc.pull_image(ref) == image_id  # pulling again: same image
    await svc.remove_image(image_id)
    await svc.remove_image(image_id)  # idempotent
    assert await svc.image_status(ref) is None
    assert await svc.list_images() == []
    assert await svc.pull_image(ref) == image_id


async def test_missing_images(images: ImageContract) -> None:
    svc, _ref, missing = images
    assert await svc.image_status(missing) is None
    with pytest.raises(ImageNotFound):
        await svc.pull_image(missing)
    await svc.remove_image(missing)  # removing what is not there is fine


async def test_filesystem_use(images: ImageContract) -> None:
    svc, _ref, _missing = images
    fs = await svc.image_fs_usage()
    assert fs.capacity_bytes > 0 and 0 <= fs.available_bytes <= fs.capacity_bytes
    assert fs.images_bytes >= 0

"""The process runtime pulls from a real registry (Debian's docker-registry, pushed with skopeo).

Expected ids and digests are read from the OCI layout the test built, never from the puller.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import platform
from pathlib import Path

import pytest

from pykubelet.runtime.errors import ImageNotFound, ImagePullError
from pykubelet.runtime.process.runtime import ProcessRuntime
from pykubelet.runtime.types import RegistryAuth
from tests.images.oci import Layout, tar_layer
from tests.images.registry import Registry

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]


def _layout_manifest(layout: Path, tag: str) -> tuple[str, dict[str, object]]:
    """(digest, parsed) of the manifest or index tagged ``tag`` in the layout."""
    index = json.loads((layout / "index.json").read_text())
    for m in index["manifests"]:
        if m["annotations"]["org.opencontainers.image.ref.name"] == tag:
            blob = layout / "blobs" / "sha256" / m["digest"].split(":")[1]
            return m["digest"], json.loads(blob.read_text())
    raise KeyError(tag)


def _config_digest(layout: Path, tag: str) -> str:
    _, manifest = _layout_manifest(layout, tag)
    config = manifest["config"]
    assert isinstance(config, dict)
    return str(config["digest"])


def _whiteouts_left(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(".wh.*")]


@pytest.fixture
def rt(tmp_path: Path) -> ProcessRuntime:
    return ProcessRuntime(tmp_path / "root")


async def test_pull_by_tag_then_by_digest(
    rt: ProcessRuntime, plain_registry: Registry, test_layout: Path
) -> None:
    ref = f"{plain_registry.host}/test/busybox:1.0"
    image_id = await rt.pull_image(ref)
    assert image_id == _config_digest(test_layout, "busybox")
    info = await rt.image_status(ref)
    assert info is not None and info.id == image_id
    assert (Path(info.rootfs_path) / "bin" / "busybox").is_file()
    manifest_digest, _ = _layout_manifest(test_layout, "busybox")
    assert info.repo_digests == (f"{plain_registry.host}/test/busybox@{manifest_digest}",)
    assert info.repo_tags == (ref,)
    # the digest reference finds the stored image, and pulling by digest works on a new store
    by_digest = f"{plain_registry.host}/test/busybox@{manifest_digest}"
    found = await rt.image_status(by_digest)
    assert found is not None and found.id == image_id
    await rt.remove_image(image_id)
    assert await rt.image_status(ref) is None
    assert await rt.pull_image(by_digest) == image_id
    assert await rt.image_status(ref) is None  # a pull by digest adds no tag


async def test_wrong_digest_is_not_found(rt: ProcessRuntime, plain_registry: Registry) -> None:
    with pytest.raises(ImageNotFound):
        await rt.pull_image(f"{plain_registry.host}/test/busybox@sha256:{'0' * 64}")
    with pytest.raises(ImageNotFound):
        await rt.pull_image(f"{plain_registry.host}/test/busybox:no-such-tag")
    with pytest.raises(ImageNotFound):
        await rt.pull_image(f"{plain_registry.host}/test/no-such-repo:1.0")
    assert await rt.list_images() == []


async def test_docker_schema2_manifest(rt: ProcessRuntime, plain_registry: Registry) -> None:
    ref = f"{plain_registry.host}/test/busybox-docker:1.0"
    image_id = await rt.pull_image(ref)
    info = await rt.image_status(ref)
    assert info is not None and info.id == image_id
    assert (Path(info.rootfs_path) / "bin" / "busybox").is_file()
    assert info.config_cmd == ("sh",)


@pytest.mark.parametrize("repo", ["test/multi:1.0", "test/multi-docker:1.0"])
async def test_manifest_list_picks_the_host_platform(
    rt: ProcessRuntime, plain_registry: Registry, repo: str
) -> None:
    ref = f"{plain_registry.host}/{repo}"
    await rt.pull_image(ref)
    info = await rt.image_status(ref)
    assert info is not None
    assert (Path(info.rootfs_path) / "arch").read_text() == ARCH


def _served_layer_types(reg: Registry, repo: str, tag: str) -> list[str]:
    conn = http.client.HTTPConnection(reg.host, timeout=10)
    conn.request(
        "GET",
        f"/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    manifest = json.loads(conn.getresponse().read())
    conn.close()
    return [layer["mediaType"] for layer in manifest["layers"]]


async def test_whiteouts_and_opaque_dirs(rt: ProcessRuntime, plain_registry: Registry) -> None:
    ref = f"{plain_registry.host}/test/layered:1.0"
    # gzip'd layers and a plain tar one, as the registry serves them
    assert (await asyncio.to_thread(_served_layer_types, plain_registry, "test/layered", "1.0"))[
        1:
    ] == ["application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar"]
    await rt.pull_image(ref)
    info = await rt.image_status(ref)
    assert info is not None
    root = Path(info.rootfs_path)
    assert sorted(p.name for p in (root / "data").iterdir()) == ["added", "kept"]
    assert sorted(p.name for p in (root / "opaque").iterdir()) == ["new"]
    assert (root / "link").is_symlink() and (root / "link").read_text() == "kept"
    assert not _whiteouts_left(root)


async def test_repull_follows_a_moved_tag(
    rt: ProcessRuntime, plain_registry: Registry, test_layout: Path
) -> None:
    ref = f"{plain_registry.host}/test/moving:1.0"
    plain_registry.push_oci(test_layout, "busybox", "test/moving:1.0")
    assert await rt.pull_image(ref) == _config_digest(test_layout, "busybox")
    plain_registry.push_oci(test_layout, "sleeper", "test/moving:1.0")
    assert await rt.pull_image(ref) == _config_digest(test_layout, "sleeper")
    info = await rt.image_status(ref)
    assert info is not None and info.config_cmd == ("sleep", "3600")


async def test_tampered_blob_is_refused(
    rt: ProcessRuntime, plain_registry: Registry, tmp_path: Path
) -> None:
    lay = Layout(tmp_path / "tamper")
    desc = lay.image([tar_layer({"file": b"original content " * 100})])
    lay.tag(desc, "t")
    plain_registry.push_oci(lay.path, "t", "test/tamper:1.0")
    _, manifest = _layout_manifest(lay.path, "t")
    layers = manifest["layers"]
    assert isinstance(layers, list)
    hexd = layers[0]["digest"].split(":")[1]
    stored = plain_registry.base / "data/docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
    data = bytearray(stored.read_bytes())
    data[-20] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(ImagePullError, match="digest"):
        await rt.pull_image(f"{plain_registry.host}/test/tamper:1.0")
    assert await rt.list_images() == []


async def test_tls_basic_auth(tmp_path: Path, tls_registry: Registry) -> None:
    ref = f"{tls_registry.host}/private/busybox:1.0"
    rt = ProcessRuntime(tmp_path / "root", registry_ca_file=tls_registry.ca_file)
    good = RegistryAuth(username=tls_registry.user, password=tls_registry.password)
    with pytest.raises(ImagePullError, match="unauthorized"):
        await rt.pull_image(ref)
    bad = RegistryAuth(username=tls_registry.user, password="wrong")
    with pytest.raises(ImagePullError, match="unauthorized"):
        await rt.pull_image(ref, bad)
    assert await rt.list_images() == []
    image_id = await rt.pull_image(ref, good)
    info = await rt.image_status(ref)
    assert info is not None and info.id == image_id
    # docker config "auth" (base64 user:password) works the same
    import base64

    encoded = base64.b64encode(f"{tls_registry.user}:{tls_registry.password}".encode()).decode()
    await rt.remove_image(image_id)
    assert await rt.pull_image(ref, RegistryAuth(auth=encoded)) == image_id


async def test_tls_needs_the_ca(tmp_path: Path, tls_registry: Registry) -> None:
    rt = ProcessRuntime(tmp_path / "root")
    auth = RegistryAuth(username=tls_registry.user, password=tls_registry.password)
    with pytest.raises(ImagePullError, match="certificate"):
        await rt.pull_image(f"{tls_registry.host}/private/busybox:1.0", auth)


async def test_tag_and_digest_pulled_at_once_unpack_once(
    rt: ProcessRuntime, plain_registry: Registry, test_layout: Path
) -> None:
    manifest_digest, _ = _layout_manifest(test_layout, "layered")
    by_tag = f"{plain_registry.host}/test/layered:1.0"
    by_digest = f"{plain_registry.host}/test/layered@{manifest_digest}"
    ids = await asyncio.gather(*(rt.pull_image(r) for r in (by_tag, by_digest, by_tag)))
    assert set(ids) == {_config_digest(test_layout, "layered")}
    assert _rootfs_dirs(rt) == [ids[0].removeprefix("sha256:")]


def _rootfs_dirs(rt: ProcessRuntime) -> list[str]:
    return sorted(p.name for p in (rt.layout.images / "rootfs").iterdir())

"""Registries with test images, started once per session (each test uses its own store).

A plugin registered by the root conftest, so tests in any folder (images, e2e, the runtime
contract) share one instance of each registry instead of importing the fixtures.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.images.oci import Layout, busybox_layer, tar_layer
from tests.images.registry import Registry, start_registry
from tests.prereq import require

OTHER_ARCH = {"amd64": "arm64"}


def _require_tools() -> None:
    for tool in ("docker-registry", "skopeo", "htpasswd"):
        require(shutil.which(tool) is not None, f"needs {tool} (scripts/install-system-deps.sh)")
    require(Path("/bin/busybox").exists(), "needs Debian's busybox-static (/bin/busybox)")


def layered_layers() -> list[bytes]:
    """busybox, then files, then whiteouts: /data/gone and everything old in /opaque vanish."""
    return [
        busybox_layer(),
        tar_layer(
            {
                "data": "dir",
                "data/gone": b"deleted by the next layer",
                "data/kept": b"kept",
                "opaque": "dir",
                "opaque/old1": b"old",
                "opaque/sub": "dir",
                "opaque/sub/old2": b"old",
                "link": "->data/kept",
            }
        ),
        tar_layer(
            {
                "data/.wh.gone": b"",
                "opaque/.wh..wh..opq": b"",
                "opaque/new": b"new",
                "data/added": b"added",
            }
        ),
    ]


@pytest.fixture(scope="session")
def test_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_tools()
    path = tmp_path_factory.mktemp("oci") / "layout"
    lay = Layout(path)
    bb = busybox_layer()
    lay.tag(lay.image([bb]), "busybox")
    lay.tag(lay.image(layered_layers(), gzipped=[True, True, False]), "layered")
    amd = lay.image([bb, tar_layer({"arch": b"amd64"})], arch="amd64")
    arm = lay.image([tar_layer({"arch": b"arm64"})], arch="arm64")
    lay.tag(lay.index([arm, amd]), "multi")
    # a second busybox-based image with a different config (a different image id)
    lay.tag(lay.image([bb], cmd=("sleep", "3600")), "sleeper")
    return path


@pytest.fixture(scope="session")
def plain_registry(
    tmp_path_factory: pytest.TempPathFactory, test_layout: Path
) -> Iterator[Registry]:
    reg = start_registry(tmp_path_factory.mktemp("registry-plain"))
    try:
        reg.push_oci(test_layout, "busybox", "test/busybox:1.0")
        reg.push_oci(test_layout, "busybox", "test/busybox-docker:1.0", docker_format=True)
        reg.push_raw(test_layout, "layered", "test/layered:1.0")  # keeps its plain-tar layer
        reg.push_oci(test_layout, "multi", "test/multi:1.0", all_platforms=True)
        reg.push_oci(
            test_layout, "multi", "test/multi-docker:1.0", all_platforms=True, docker_format=True
        )
        reg.push_oci(test_layout, "sleeper", "test/sleeper:1.0")
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory, test_layout: Path) -> Iterator[Registry]:
    reg = start_registry(tmp_path_factory.mktemp("registry-tls"), tls_auth=True)
    try:
        reg.push_oci(test_layout, "busybox", "private/busybox:1.0")
        yield reg
    finally:
        reg.stop()

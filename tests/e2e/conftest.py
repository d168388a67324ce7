"""End-to-end fixtures: a busybox image built here from Debian's busybox-static, and nodes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.containerd import PAUSE_REF, Containerd
from tests.e2e.node import Node
from tests.prereq import require, require_binary, require_root


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(Path("/bin/busybox").exists(), "needs Debian's busybox-static (/bin/busybox)")
    from devtools.busybox_image import build_busybox_image

    out = tmp_path_factory.mktemp("image") / "busybox.tar"
    build_busybox_image(out, ref="docker.io/library/busybox:latest")
    return out


@pytest.fixture(scope="session")
def image_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the containerd fixture keeps the pause and busybox tarballs it builds once."""
    return tmp_path_factory.mktemp("cri-images")


def _containerd(base: Path, busybox_tar: Path, image_cache: Path) -> Containerd:
    for prog in ("containerd", "ctr", "runc", "gcc"):
        require_binary(prog)
    from devtools.busybox_image import build_pause_image

    pause = image_cache / "pause.tar"
    if not pause.exists():
        build_pause_image(pause, PAUSE_REF)
    c = Containerd(base / "containerd").start()
    try:
        c.import_image(pause)
        c.import_image(busybox_tar)
    except BaseException:
        c.stop()
        raise
    return c


RUNTIMES = ("process", "containerd")


def make_node(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, busybox_tar: Path
) -> Iterator[Node]:
    """A node on the embedded process runtime, or on a private containerd over CRI."""
    require_root()
    containerd = None
    if kind == "containerd":
        image_cache = request.getfixturevalue("image_cache")
        containerd = _containerd(tmp_path, busybox_tar, image_cache)
        n = Node(
            base=tmp_path,
            image_tar=busybox_tar,
            containerd=containerd,
            cgroup_root=containerd.cgroup_parent,
        )
    else:
        n = Node(base=tmp_path, image_tar=busybox_tar)
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pykubelet.cli",
                "images",
                "import",
                "--root-dir",
                str(n.root),
                str(busybox_tar),
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
    try:
        yield n
    finally:
        try:
            n.cleanup()
        finally:
            if containerd is not None:
                containerd.stop()


@pytest.fixture(params=RUNTIMES)
def node(request: pytest.FixtureRequest, tmp_path: Path, busybox_tar: Path) -> Iterator[Node]:
    """A node on each runtime: the embedded process runtime, and containerd over CRI."""
    yield from make_node(request.param, request, tmp_path, busybox_tar)

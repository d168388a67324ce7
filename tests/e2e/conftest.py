"""End-to-end fixtures: a busybox image built here from Debian's busybox-static, and nodes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.node import Node
from tests.prereq import require, require_root


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(Path("/bin/busybox").exists(), "needs Debian's busybox-static (/bin/busybox)")
    from devtools.busybox_image import build_busybox_image

    out = tmp_path_factory.mktemp("image") / "busybox.tar"
    build_busybox_image(out, ref="docker.io/library/busybox:latest")
    return out


@pytest.fixture
def node(tmp_path: Path, busybox_tar: Path) -> Iterator[Node]:
    require_root()
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
        n.cleanup()

"""A real ``pykubelet run`` with the pods the upstream recording was made with
(``tests/fixtures/upstream/``, README there), for the tests that compare against upstream."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.upstream_diff import settled
from tests.e2e.node import Node, wait_for
from tests.prereq import require, require_root

UPSTREAM = Path(__file__).resolve().parent.parent / "fixtures" / "upstream"
# The image the manifests name; upstream's recording used the same name (scripts/upstream-k8s).
IMAGE = "localhost/busybox:1.35"


@dataclass(frozen=True)
class UpstreamNode:
    node: Node
    empty_pods: bytes  # /pods before any manifest was written


@pytest.fixture(scope="module")
def upstream_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamNode]:
    """An agent that answered /pods empty, then runs the fixture manifests until they settled,
    as scripts/record-upstream.sh did upstream."""
    require_root()
    require(Path("/bin/busybox").exists(), "needs Debian's busybox-static (/bin/busybox)")
    from devtools.busybox_image import build_busybox_image

    base = tmp_path_factory.mktemp("upstream-node")
    tar = build_busybox_image(base / "busybox.tar", ref=IMAGE)
    n = Node(base=base, image_tar=tar)
    cmd = [sys.executable, "-m", "pykubelet.cli", "images", "import", "--root-dir", str(n.root)]
    r = subprocess.run([*cmd, str(tar)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    try:
        n.start()
        empty = n.get_bytes("/pods")
        for manifest in sorted((UPSTREAM / "manifests").glob("*.yaml")):
            n.write_pod(manifest.stem, manifest.read_text())
        wait_for(lambda: settled(n.get("/pods")["items"]), 120, "the fixture pods to settle")
        time.sleep(3)  # one more probe period, as the recorder waited
        yield UpstreamNode(node=n, empty_pods=empty)
    finally:
        n.cleanup()

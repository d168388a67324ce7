"""A full container log volume under a running agent (issue #14): the container keeps running,
the agent keeps serving, the loss shows on /metrics and in the agent's log, and the log grows
again once space returns. The agent's ``<root>/logs`` is a small tmpfs the test mounts (and
unmounts after the node is cleaned up, whatever happens)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import make_node
from tests.e2e.node import Node, wait_for
from tests.small_volume import fill, small_tmpfs

pytestmark = pytest.mark.root

CHATTY = """\
apiVersion: v1
kind: Pod
metadata: {name: chatty}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.01; done"]
"""
_LOST = re.compile(r"^pykubelet_container_log_records_lost_total (\S+)$", re.M)


@pytest.fixture
def log_volume(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "root" / "logs", "512k") as d:  # make_node's root: <tmp>/root
        yield d


@pytest.fixture
def node(
    log_volume: Path, request: pytest.FixtureRequest, tmp_path: Path, busybox_tar: Path
) -> Iterator[Node]:
    yield from make_node("process", request, tmp_path, busybox_tar)


def _lost(node: Node) -> float:
    m = _LOST.search(node.get_text("/metrics"))
    return float(m.group(1)) if m else 0.0


def test_full_log_volume_is_counted_reported_and_survived(node: Node, log_volume: Path) -> None:
    node.start()
    node.write_pod("chatty", CHATTY)
    running = wait_for(
        lambda: (x := node.container("chatty", "c")) and x["state"].get("running") and x,
        30,
        "running",
    )
    pod = node.pod("chatty")
    assert pod is not None
    log = node.log_dir(pod) / "c" / "0.log"
    assert _lost(node) == 0
    filler = fill(log_volume)
    # the agent polls the shims' counts every 10 s
    lost = wait_for(lambda: _lost(node), 40, "the loss on /metrics")
    assert lost > 0
    assert "not written to" in node.log() and "No space left on device" in node.log()
    now = node.container("chatty", "c")  # the agent serves, the container runs on
    assert now is not None and now["state"].get("running")
    assert now["containerID"] == running["containerID"] and now["restartCount"] == 0
    filler.unlink()
    size = log.stat().st_size
    wait_for(lambda: log.stat().st_size > size + 1000, 20, "writing to resume")

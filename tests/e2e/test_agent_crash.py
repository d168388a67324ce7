"""The agent SIGKILLed twice in the middle of a 10-pod static start (the small version of
``bench/bench_crash.py``, 110 pods and 10 kills): the next agent runs every pod exactly once,
restarts nothing, loses no log line and leaves no cgroup, veth or address behind."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import make_node
from tests.e2e.crash import kill_mid_start, recover, write_pods
from tests.e2e.node import Node

pytestmark = pytest.mark.root

PODS = 10


@pytest.fixture
def process_node(
    request: pytest.FixtureRequest, tmp_path: Path, busybox_tar: Path
) -> Iterator[Node]:
    yield from make_node("process", request, tmp_path, busybox_tar)


async def test_sigkill_mid_start_twice_then_every_pod_once(process_node: Node) -> None:
    rng = random.Random(14)
    write_pods(process_node, PODS)
    for _ in range(2):  # killed once 1..9 containers run (the start may outrun the watcher)
        await kill_mid_start(process_node, PODS, rng)
    outcome, _took = await recover(process_node, PODS)
    assert outcome.pods == PODS, (outcome, process_node.log()[-3000:])
    assert outcome.clean, (outcome, process_node.log()[-3000:])
    process_node.stop()

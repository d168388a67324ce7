"""The description's walk against ``pykubelet run`` on the process runtime (root, busybox):
real container logs, a real shell for exec and /run, a real echo service for port-forward, and
stats from real cgroups validated against the Summary schema; on 10250, 10255 and 10248."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.node import NODE, Node, wait_for
from tests.openapi.agent import FULL, OPS, Target
from tests.openapi.checker import Operation
from tests.openapi.test_walk import walk_operation
from tests.prereq import require_root
from tests.server.harness import Pki

pytestmark = pytest.mark.asyncio(loop_scope="module")

MANIFEST = """apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 1  # sh as PID 1 ignores SIGTERM: do not wait 30 s at cleanup
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "nc -ll -p 80 -e cat & while true; do echo tick; sleep 1; done"]
"""


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Iterator[Target]:
    require_root()

    ro, hz = free_port(), free_port()
    node = Node(base=tmp_path_factory.mktemp("openapi-e2e"), image_tar=busybox_tar)
    node.extra_args = ["--read-only-port", str(ro), "--healthz-port", str(hz)]
    try:
        r = subprocess.run(
            [sys.executable, "-m", "pykubelet.cli", "images", "import",
             "--root-dir", str(node.root), str(busybox_tar)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        node.start()
        node.write_pod("web", MANIFEST)

        def running() -> bool:
            c = node.container("web", "main")
            return bool(c and "running" in c.get("state", {}))

        wait_for(running, 60, "the busybox pod to run")
        wait_for(lambda: _summary_ready(node), 60, "the first stats")
        pod = node.pod("web")
        assert pod is not None
        pki = Pki(
            dir=node.pki,
            ca=node.ca,
            serving=node.serving,
            admin=node.client,  # CN=tester, O=system:masters
            rogue_ca=node.ca,
            rogue=node.client,
        )
        yield Target(
            agent=None,  # type: ignore[arg-type]  # a subprocess: no routers to read here
            pki=pki,
            ports={FULL: node.port, 10255: ro, 10248: hz},
            pod={
                "namespace": "default",
                "pod": f"web-{NODE}",
                "uid": pod["metadata"]["uid"],
                "container": "main",
            },
            tokens={},
            exec_stdout=b"walk\n",
        )
    finally:
        node.cleanup()


def _summary_ready(node: Node) -> bool:
    try:
        node.get("/stats/summary")
        return True
    except AssertionError:
        return False


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.id)
async def test_operation_walks_as_described_on_the_process_runtime(
    target: Target, op: Operation
) -> None:
    await walk_operation(target, op)

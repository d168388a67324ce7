"""Pods, statuses and CRI log files for the containerLogs tests."""

from __future__ import annotations

from pathlib import Path

from pykubelet.api import (
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateView,
    ContainerStateWaiting,
    ContainerStatusView,
    Pod,
    PodStatus,
)
from pykubelet.logs import encode_records
from pykubelet.runtime.types import ContainerState
from tests.server.harness import StaticPods, TinyRuntime, container, sandbox

T0 = 1_700_000_000_000_000_000  # ns


def make_pod(name: str, containers: list[str], statuses: list[ContainerStatusView]) -> Pod:
    pod = Pod.from_dict(
        {
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"containers": [{"name": c, "image": "busybox:1.35"} for c in containers]},
        }
    )
    return pod.with_status(PodStatus(phase="Running", container_statuses=tuple(statuses)))


def running(name: str, cid: str) -> ContainerStatusView:
    return ContainerStatusView(
        name=name,
        image="busybox:1.35",
        state=ContainerStateView(running=ContainerStateRunning(started_at=1.0)),
        container_id=f"pykubelet://{cid}",
    )


def write_lines(path: Path, lines: list[tuple[str, str]], start_ns: int = T0) -> None:
    """Append full records, one per (stream, text), 1 s apart from ``start_ns``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        for i, (stream, text) in enumerate(lines):
            f.write(encode_records(stream, text.encode() + b"\n", start_ns + i * 1_000_000_000))


class LogWorld:
    """One pod ``web`` with containers: ``main`` (running, log file), ``done`` (exited, has a
    previous instance), ``wait`` (waiting, ImagePullBackOff), ``fresh`` (no state)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.main_log = base / "main" / "0.log"
        self.prev_log = base / "done" / "0.log"
        self.done_log = base / "done" / "1.log"
        self.runtime = TinyRuntime(sandboxes=[sandbox("s1", "web")])
        self.runtime.containers = {
            "c-main": container("c-main", "s1", "main", log_path=str(self.main_log)),
            "c-done": container(
                "c-done", "s1", "done", state=ContainerState.EXITED, log_path=str(self.done_log)
            ),
            "c-prev": container(
                "c-prev", "s1", "done", state=ContainerState.EXITED, log_path=str(self.prev_log)
            ),
        }
        statuses = [
            running("main", "c-main"),
            ContainerStatusView(
                name="done",
                image="busybox:1.35",
                state=ContainerStateView(
                    terminated=ContainerStateTerminated(
                        exit_code=0, container_id="pykubelet://c-done"
                    )
                ),
                last_state=ContainerStateView(
                    terminated=ContainerStateTerminated(
                        exit_code=1, container_id="pykubelet://c-prev"
                    )
                ),
                container_id="pykubelet://c-done",
            ),
            ContainerStatusView(
                name="wait",
                image="busybox:1.35",
                state=ContainerStateView(waiting=ContainerStateWaiting(reason="ImagePullBackOff")),
            ),
            ContainerStatusView(name="fresh", image="busybox:1.35"),
        ]
        self.pods = StaticPods(
            [make_pod("web", ["main", "done", "wait", "fresh", "ghost"], statuses)]
        )
        write_lines(self.main_log, [("stdout", f"line {i}") for i in range(1, 6)])
        write_lines(self.prev_log, [("stderr", "previous life")])
        write_lines(self.done_log, [("stdout", "finished")])


def append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)

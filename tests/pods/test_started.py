"""containerStatuses[].started follows the startup probe, as upstream's prober manager sets it."""

from __future__ import annotations

from pykubelet.pods.status_builder import build_pod_status
from pykubelet.runtime.types import ContainerState, ContainerStatus
from tests.pods.harness import ctr, manifest, static


def _running(name: str, cid: str) -> ContainerStatus:
    return ContainerStatus(
        id=cid,
        sandbox_id="sb",
        name=name,
        attempt=0,
        state=ContainerState.RUNNING,
        image="busybox:1.36",
        created_at=1.0,
        started_at=2.0,
    )


def test_started_is_false_until_the_startup_probe_succeeds() -> None:
    pod = static(manifest("boot", ctr("a"), ctr("b"), ctr("c")))
    history = {n: [_running(n, f"id-{n}")] for n in ("a", "b", "c")}
    verdicts = {"id-a": False, "id-b": True, "id-c": None}  # c: no startup probe
    status = build_pod_status(
        pod,
        history,
        {},
        runtime_name="fake",
        readiness=lambda cid: None,
        started=verdicts.get,
    )
    started = {c.name: c.started for c in status.container_statuses}
    assert started == {"a": False, "b": True, "c": True}

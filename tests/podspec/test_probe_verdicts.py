"""Probe verdicts are inputs to the pod's worker, and events: nothing here stops a container."""

from __future__ import annotations

from pykubelet.api import Pod
from pykubelet.core.clock import FakeClock
from pykubelet.pods.types import KillRequest
from pykubelet.podspec.actions import ProbeResult
from pykubelet.podspec.prober import ProbeChange, ProbeType
from pykubelet.podspec.probing import ProbeVerdicts
from pykubelet.runtime.fake import FakeRuntime

POD = Pod.from_dict(
    {
        "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
        "spec": {"containers": [{"name": "web", "image": "busybox"}]},
    }
)


class _Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, str]] = []

    def event(
        self, pod: Pod, type_: str, reason: str, message: str, *, field_path: str = ""
    ) -> None:
        self.seen.append((type_, reason, message, field_path))


def _change(kind: ProbeType, result: ProbeResult, output: str = "") -> ProbeChange:
    return ProbeChange(
        pod=POD,
        container_name="web",
        container_id="c1",
        probe_type=kind,
        result=result,
        output=output,
        grace_period_s=7.0,
    )


async def test_liveness_failure_is_an_unhealthy_event_and_a_kill_request() -> None:
    events = _Events()
    woken: list[str] = []
    kills: list[tuple[str, KillRequest]] = []
    clock = FakeClock()
    verdicts = ProbeVerdicts(FakeRuntime(clock), clock, events=events)
    verdicts.connect(wake=woken.append, kill=lambda uid, r: kills.append((uid, r)))
    verdicts.probe_changed(_change(ProbeType.LIVENESS, ProbeResult.FAILURE, "HTTP 500\n"))
    assert events.seen == [
        ("Warning", "Unhealthy", "Liveness probe failed: HTTP 500", "spec.containers{web}")
    ]
    assert kills == [
        (
            "u1",
            KillRequest(
                container_id="c1",
                message="Container web failed liveness probe, will be restarted",
                grace_s=7.0,
            ),
        )
    ]
    assert woken == []
    await verdicts.close()


async def test_readiness_failure_is_an_event_and_a_wake_not_a_kill() -> None:
    events = _Events()
    woken: list[str] = []
    kills: list[tuple[str, KillRequest]] = []
    clock = FakeClock()
    verdicts = ProbeVerdicts(FakeRuntime(clock), clock, events=events)
    verdicts.connect(wake=woken.append, kill=lambda uid, r: kills.append((uid, r)))
    verdicts.probe_changed(_change(ProbeType.READINESS, ProbeResult.FAILURE))
    verdicts.probe_changed(_change(ProbeType.READINESS, ProbeResult.SUCCESS))
    assert [e[1:3] for e in events.seen] == [("Unhealthy", "Readiness probe failed")]
    assert woken == ["u1", "u1"] and kills == []
    await verdicts.close()

"""activeDeadlineSeconds on the pod workers (FakeRuntime + FakeClock): the pod is killed and
fails with reason DeadlineExceeded, and nothing is restarted afterwards."""

from __future__ import annotations

from tests.pods.harness import ctr, harness, manifest, static


async def test_active_deadline_fails_the_pod() -> None:
    pod = static(manifest("short", ctr("app"), activeDeadlineSeconds=5, restartPolicy="Always"))
    async with harness() as h:
        h.set_pods(pod)
        await h.until(lambda: h.pod_status(pod).phase == "Running")
        await h.advance(3)
        assert h.pod_status(pod).phase == "Running"  # not yet
        await h.until(lambda: h.pod_status(pod).phase == "Failed", max_s=10)
        st = h.pod_status(pod)
        assert st.reason == "DeadlineExceeded"
        assert st.message == "Pod was active on the node longer than the specified deadline"
        assert h.runtime.running() == []
        started = len(h.runtime.started)
        await h.advance(30)
        assert len(h.runtime.started) == started  # Failed is final: no restarts


async def test_pods_without_a_deadline_keep_running() -> None:
    pod = static(manifest("long", ctr("app")))
    async with harness() as h:
        h.set_pods(pod)
        await h.until(lambda: h.pod_status(pod).phase == "Running")
        await h.advance(60)
        assert h.pod_status(pod).phase == "Running"
        assert h.pod_status(pod).reason == ""

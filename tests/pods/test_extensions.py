"""The worker's extension points, as the pod-spec layer (probes, hooks, volumes) uses them."""

from __future__ import annotations

from pykubelet.api import Container, Pod
from pykubelet.core.errors import InvalidInput
from pykubelet.runtime.types import ContainerStatus, SandboxState, SandboxStatus
from tests.pods.harness import ctr, harness, manifest, static


async def test_readiness_verdicts_drive_ready_conditions() -> None:
    verdicts: dict[str, bool | None] = {}
    pod = static(manifest("p", ctr("a"), ctr("b")))
    async with harness(readiness=lambda cid: verdicts.get(cid)) as h:
        h.set_pods(pod)
        await h.until(lambda: len(h.runtime.running()) == 2)
        b = next(c for c in h.runtime.running() if c.name == "b")
        verdicts[b.id] = False
        h.manager.wake(pod.uid)
        await h.settle()
        st = h.pod(pod).status
        assert st is not None and st.phase == "Running"
        ready = {c.type: c for c in st.conditions}["Ready"]
        assert ready.status == "False" and ready.message == "containers with unready status: [b]"
        verdicts[b.id] = True
        h.manager.wake(pod.uid)
        await h.settle()
        assert {c.type: c.status for c in h.pod_status(pod).conditions}["Ready"] == "True"


async def test_running_and_exited_are_announced_once_including_adopted_containers() -> None:
    events: list[tuple[str, str]] = []

    async def running(pod: Pod, c: Container, st: ContainerStatus, sb: SandboxStatus) -> None:
        assert sb.id == st.sandbox_id
        events.append(("running", c.name))

    async def exited(pod: Pod, cid: str) -> None:
        events.append(("exited", cid))

    pod = static(manifest("p", ctr("a")))
    async with harness(on_container_running=running, on_container_exited=exited) as h:
        h.set_pods(pod)
        await h.until(lambda: len(h.runtime.running()) == 1)
        await h.advance(5)
        assert events == [("running", "a")]
        runtime, clock = h.runtime, h.clock
    async with harness(
        runtime=runtime, clock=clock, on_container_running=running, on_container_exited=exited
    ) as h2:
        h2.set_pods(pod)
        await h2.advance(1)
        assert events == [("running", "a"), ("running", "a")]
        [c] = runtime.running()
        runtime.exit_container(c.id, 1)
        await h2.until(lambda: events.count(("running", "a")) == 3)
        assert ("exited", c.id) in events


async def test_prepare_failure_keeps_containers_waiting_then_recovers() -> None:
    calls: list[str] = []
    broken = {"yes": True}

    async def prepare(pod: Pod, sandbox: SandboxStatus) -> None:
        assert sandbox.state is SandboxState.READY  # prepared against the pod's ready sandbox
        calls.append(pod.uid)
        if broken["yes"]:
            raise InvalidInput("hostPath /nope does not exist", field="spec.volumes[0].hostPath")

    removed: list[str] = []

    async def on_removed(pod: Pod) -> None:
        removed.append(pod.uid)

    pod = static(manifest("p", ctr("a")))
    async with harness(prepare_pod=prepare, on_pod_removed=on_removed) as h:
        h.set_pods(pod)
        await h.settle()
        w = h.status(pod, "a").state.waiting
        assert w.reason == "CreateContainerConfigError" and "spec.volumes[0].hostPath" in w.message
        broken["yes"] = False
        await h.until(lambda: len(h.runtime.running()) == 1, max_s=15)
        h.set_pods()
        await h.until(lambda: removed == [pod.uid], max_s=40)

"""The pod's worker is the only caller of the runtime for its pod: probe verdicts and hook
failures are inputs it acts on, in order with termination (no preStop hook runs twice)."""

from __future__ import annotations

import asyncio
from collections import Counter

from pykubelet.api import Container, Pod
from pykubelet.pods.types import KillRequest
from pykubelet.runtime.types import ContainerState
from tests.pods.harness import ctr, harness, manifest, static


async def test_a_probe_kill_racing_a_pod_deletion_runs_pre_stop_once() -> None:
    pre_stops: Counter[str] = Counter()
    hook_running = asyncio.Event()
    release = asyncio.Event()

    async def pre_stop(pod: Pod, c: Container, cid: str, grace: float) -> float:
        pre_stops[cid] += 1
        hook_running.set()
        await release.wait()
        return grace

    pod = static(manifest("p", ctr("a"), terminationGracePeriodSeconds=5))
    async with harness(pre_stop=pre_stop) as h:
        h.set_pods(pod)
        await h.until(lambda: len(h.runtime.running()) == 1)
        cid = h.runtime.running()[0].id
        # liveness fails: the verdict goes to the worker...
        h.manager.kill_container(pod.uid, KillRequest(container_id=cid, message="liveness"))
        await h.settle()
        assert hook_running.is_set()
        # ...and the pod is deleted while that preStop hook still runs
        h.set_pods()
        release.set()
        await h.manager.wait_terminated()
        assert pre_stops[cid] == 1
        assert h.runtime.running() == []


async def test_a_kill_request_for_a_container_already_gone_does_nothing() -> None:
    pod = static(manifest("p", ctr("a")))
    async with harness() as h:
        h.set_pods(pod)
        await h.until(lambda: len(h.runtime.running()) == 1)
        first = h.runtime.running()[0].id
        h.manager.kill_container(pod.uid, KillRequest(container_id="not-a-container", message="x"))
        await h.advance(2)
        assert [c.id for c in h.runtime.running()] == [first]
        assert h.status(pod, "a").restart_count == 0


async def test_a_failed_post_start_hook_is_carried_out_by_the_worker() -> None:
    failures = ["PostStartHookError: boom", None]

    async def post_start(pod: Pod, c: Container, cid: str) -> str | None:
        return failures.pop(0) if failures else None

    pod = static(manifest("p", ctr("a")))
    async with harness(on_container_started=post_start) as h:
        h.set_pods(pod)
        # killed once, restarted by restartPolicy Always after the crash back-off (10 s)
        await h.until(lambda: h.status(pod, "a").restart_count == 1, max_s=30)
        await h.until(lambda: len(h.runtime.running()) == 1)
        last = h.status(pod, "a").last_state.terminated
        assert last is not None and last.exit_code == 143  # SIGTERM from the worker's stop


async def test_graceful_api_deletion_keeps_the_final_status_until_the_source_removes_it() -> None:
    from pykubelet.pods import PodUpdate, UpdateOp

    doc = manifest("web", ctr("a"), terminationGracePeriodSeconds=30)
    doc["metadata"].update(uid="u-1", namespace="default")
    pod = Pod.from_dict(doc)
    async with harness() as h:
        changes = h.statuses.subscribe()
        h.manager.handle(PodUpdate(op=UpdateOp.SET, source="api", pods=(pod,)))
        await h.until(lambda: len(h.runtime.running()) == 1)
        h.runtime.ignore_sigterm("a")
        doc["metadata"].update(
            deletionTimestamp="2026-12-07T06:00:00Z", deletionGracePeriodSeconds=7
        )
        deleting = Pod.from_dict(doc)
        h.manager.handle(PodUpdate(op=UpdateOp.ADD, source="api", pods=(deleting,)))
        await h.advance(6.5)
        assert len(h.runtime.running()) == 1  # the API's grace period (7 s), not the spec's 30
        await h.advance(1.0)
        await h.until(lambda: h.runtime.running() == [])
        await h.settle()
        final = h.manager.get_pod_by_uid(pod.uid)
        assert final is not None and final.status is not None
        st = final.status.find_container("a")
        assert st is not None and st.state.terminated is not None
        assert st.state.terminated.exit_code == 137  # SIGKILL after the grace period
        seen = set()
        while not changes.empty():
            seen.add(changes.get_nowait())
        assert pod.uid in seen
        # the watch's DELETED event: now it is forgotten
        h.manager.handle(PodUpdate(op=UpdateOp.REMOVE, source="api", pods=(deleting,)))
        await h.manager.wait_terminated()
        assert h.manager.get_pod_by_uid(pod.uid) is None
        assert h.statuses.get_pod_status(pod.uid) is None


async def test_rejections_go_through_the_status_manager() -> None:
    pods = [static(manifest(f"p{i}", ctr("a"))) for i in range(2)]
    async with harness(max_pods=1) as h:
        h.set_pods(*pods)
        await h.settle()
        rejected = h.statuses.get_pod_status(pods[1].uid)
        assert rejected is not None and rejected.phase == "Failed"
        assert rejected.reason == "OutOfpods"
        h.set_pods(pods[0])
        await h.settle()
        assert h.statuses.get_pod_status(pods[1].uid) is None
        assert all(c.state is ContainerState.RUNNING for c in h.runtime.running())


async def test_a_changed_container_spec_under_the_same_uid_restarts_it_at_once() -> None:
    from pykubelet.pods import PodUpdate, UpdateOp

    doc = manifest("web", ctr("a"), ctr("b"), restartPolicy="Never")
    doc["metadata"].update(uid="u-2", namespace="default")
    async with harness() as h:
        h.manager.handle(PodUpdate(op=UpdateOp.SET, source="api", pods=(Pod.from_dict(doc),)))
        await h.until(lambda: len(h.runtime.running()) == 2)
        before = {c.name: c.id for c in h.runtime.running()}
        doc["spec"]["containers"][0]["image"] = "busybox:1.37"  # kubectl set image
        changed = Pod.from_dict(doc)
        h.manager.handle(PodUpdate(op=UpdateOp.ADD, source="api", pods=(changed,)))
        await h.until(
            lambda: len(h.runtime.running()) == 2 and h.status(changed, "a").restart_count == 1
        )
        after = {c.name: c for c in h.runtime.running()}
        assert after["a"].id != before["a"]
        assert after["b"].id == before["b"]  # its spec did not change: left alone
        st = h.status(changed, "a")
        assert st.image == "busybox:1.37" and st.state.running is not None
        assert st.last_state.terminated is not None  # the old definition, stopped by the worker

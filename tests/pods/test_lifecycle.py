"""Pod lifecycle on FakeRuntime + FakeClock: start, init order, restart policies, back-off,
graceful stop, maxPods admission, image errors, adoption after an agent restart."""

from __future__ import annotations

import itertools

from pykubelet.core.clock import FakeClock
from pykubelet.runtime.fake import FakeRuntime
from pykubelet.runtime.types import ContainerStatus
from tests.pods.harness import Harness, ctr, harness, manifest, static


def _running(h: Harness, name: str) -> list[ContainerStatus]:
    return [c for c in h.runtime.running() if c.name == name]


async def test_pod_starts_and_reports_running_status() -> None:
    pod = static(manifest("web", ctr("a"), ctr("b")))
    async with harness() as h:
        h.set_pods(pod)
        await h.until(lambda: h.pod_status(pod).phase == "Running")
        st = h.pod(pod).status
        assert st is not None
        assert [c.type for c in st.conditions] == [
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        ]
        assert all(c.status == "True" for c in st.conditions)
        assert all(c.last_transition_time > 0 for c in st.conditions)
        a = st.find_container("a")
        assert a is not None and a.ready and a.restart_count == 0
        assert a.container_id.startswith("fake://")
        assert a.state.running is not None
        assert st.host_ip == "127.0.0.1" and st.pod_ip.startswith("10.88.")
        assert st.start_time > 0 and st.qos_class == "BestEffort"
        assert pod.meta.name == "web-node1"
        assert h.manager.stats().running_containers == 2


async def test_init_containers_run_in_order_each_to_success() -> None:
    pod = static(manifest("p", ctr("app"), initContainers=[ctr("i1"), ctr("i2")]))
    async with harness() as h:
        h.runtime.script("i1", exit_code=0, after_s=3)
        h.runtime.script("i2", exit_code=0, after_s=3)
        h.set_pods(pod)
        await h.settle()
        assert [n for n, _ in h.runtime.started] == ["i1"]
        st = h.pod(pod).status
        assert st is not None and st.phase == "Pending"
        app = st.find_container("app")
        assert app is not None and app.state.waiting is not None
        assert app.state.waiting.reason == "PodInitializing"
        init = st.conditions[0]
        assert init.status == "False" and init.reason == "ContainersNotInitialized"
        assert init.message == "containers with incomplete status: [i1 i2]"
        await h.until(lambda: bool(_running(h, "app")))
        assert [n for n, _ in h.runtime.started] == ["i1", "i2", "app"]
        await h.until(lambda: h.pod_status(pod).phase == "Running")
        i1 = h.status(pod, "i1")
        assert i1.state.terminated.reason == "Completed" and i1.ready


async def test_failed_init_container_is_retried_with_backoff() -> None:
    pod = static(manifest("p", ctr("app"), initContainers=[ctr("init")]))
    async with harness() as h:
        h.runtime.script("init", exit_code=3, after_s=1)
        h.set_pods(pod)
        await h.until(lambda: len(h.runtime.started) >= 2)
        await h.advance(2)
        st = h.status(pod, "init")
        assert st.state.waiting.reason == "CrashLoopBackOff"
        assert st.last_state.terminated.exit_code == 3
        assert all(n == "init" for n, _ in h.runtime.started)


async def test_failed_init_container_with_restart_policy_never_fails_the_pod() -> None:
    pod = static(manifest("p", ctr("app"), initContainers=[ctr("init")], restartPolicy="Never"))
    async with harness() as h:
        h.runtime.script("init", exit_code=1, after_s=1)
        h.set_pods(pod)
        await h.until(lambda: h.pod_status(pod).phase == "Failed")
        await h.advance(30)
        assert h.runtime.started == [("init", 0)]
        assert h.status(pod, "init").state.terminated.reason == "Error"


async def test_crash_loop_backoff_sequence_doubles_to_five_minutes() -> None:
    pod = static(manifest("p", ctr("crash")))
    async with harness() as h:
        h.runtime.script("crash", exit_code=1, after_s=0)
        h.set_pods(pod)
        starts: list[float] = []

        def started() -> bool:
            if len(h.runtime.started) > len(starts):
                starts.append(h.clock.monotonic())
            return False

        # watch starts over 16 fake minutes, noting the time of each (re)start
        for _ in range(int(16 * 60 / 0.5)):
            started()
            await h.advance(0.5)
        gaps = [round(b - a) for a, b in itertools.pairwise(starts)]
        # upstream: the first restart is immediate (relist ~1 s), then 10, 20, 40 … capped at 300
        expected = [10, 20, 40, 80, 160, 300, 300]
        assert gaps[0] <= 1, gaps
        assert gaps[1:] == expected[: len(gaps) - 1], gaps
        assert len(gaps) >= 7, gaps
        st = h.status(pod, "crash")
        assert st.state.waiting.reason == "CrashLoopBackOff"
        assert st.state.waiting.message.startswith(
            "back-off 5m0s restarting failed container=crash"
        )
        assert st.last_state.terminated.exit_code == 1
        assert st.restart_count == len(starts) - 1
        assert h.pod_status(pod).phase == "Running"


async def test_backoff_resets_after_ten_minutes_of_running() -> None:
    pod = static(manifest("p", ctr("slow")))
    async with harness() as h:
        h.runtime.script("slow", exit_code=1, after_s=5)
        h.set_pods(pod)
        await h.until(lambda: len(h.runtime.started) >= 3, max_s=120)
        h.runtime.script("slow", exit_code=1, after_s=601)
        await h.until(lambda: len(h.runtime.started) >= 4, max_s=120)
        t0 = h.clock.monotonic()
        await h.until(lambda: len(h.runtime.started) >= 5, max_s=700)
        # ran 601 s, then restarted at once (within the relist period), not after 40 s
        assert h.clock.monotonic() - t0 <= 603


async def test_restart_policies() -> None:
    never = static(manifest("never", ctr("c"), restartPolicy="Never"))
    onfail_ok = static(manifest("onfail-ok", ctr("ok"), restartPolicy="OnFailure"))
    onfail_bad = static(manifest("onfail-bad", ctr("bad"), restartPolicy="OnFailure"))
    async with harness() as h:
        h.runtime.script("c", exit_code=2, after_s=1)
        h.runtime.script("ok", exit_code=0, after_s=1)
        h.runtime.script("bad", exit_code=2, after_s=1)
        h.set_pods(never, onfail_ok, onfail_bad)
        await h.until(lambda: h.pod_status(never).phase == "Failed")
        await h.until(lambda: h.pod_status(onfail_ok).phase == "Succeeded")
        await h.until(lambda: h.status(onfail_bad, "bad").restart_count >= 1)
        await h.advance(30)
        assert [a for n, a in h.runtime.started if n == "c"] == [0]
        assert [a for n, a in h.runtime.started if n == "ok"] == [0]
        assert h.pod_status(onfail_bad).phase == "Running"
        done = h.pod_status(onfail_ok)
        assert done.conditions[1].reason == "PodCompleted"
        assert h.status(never, "c").state.terminated.exit_code == 2


async def test_oom_kill_is_reported_as_oomkilled() -> None:
    pod = static(manifest("p", ctr("hog"), restartPolicy="Never"))
    async with harness() as h:
        h.runtime.script("hog", oom=True, after_s=1)
        h.set_pods(pod)
        await h.until(lambda: h.pod_status(pod).phase == "Failed")
        t = h.status(pod, "hog").state.terminated
        assert t.reason == "OOMKilled" and t.exit_code == 137


async def test_removing_a_pod_stops_it_gracefully_then_removes_it() -> None:
    pod = static(manifest("p", ctr("stubborn"), ctr("polite"), terminationGracePeriodSeconds=7))
    async with harness() as h:
        h.runtime.ignore_sigterm("stubborn")
        h.set_pods(pod)
        await h.until(lambda: len(h.runtime.running()) == 2)
        h.set_pods()
        assert h.manager.list_pods() == []
        await h.until(lambda: len(h.runtime.stops) == 2, max_s=30)
        by_name = {s.name: s for s in h.runtime.stops}
        assert by_name["stubborn"].timeout_s == 7
        assert by_name["stubborn"].finished_at - by_name["stubborn"].started_at == 7
        assert by_name["stubborn"].exit_code == 137
        assert by_name["polite"].exit_code == 143
        await h.manager.wait_terminated()
        assert await h.runtime.list_pod_sandboxes() == []
        assert h.statuses.get_pod_status(pod.uid) is None


async def test_grace_period_zero_still_gets_the_two_second_minimum() -> None:
    pod = static(manifest("p", ctr("c"), terminationGracePeriodSeconds=0))
    async with harness() as h:
        h.set_pods(pod)
        await h.until(lambda: len(h.runtime.running()) == 1)
        h.set_pods()
        await h.until(lambda: len(h.runtime.stops) == 1)
        assert h.runtime.stops[0].timeout_s == 2


async def test_changed_manifest_replaces_the_pod() -> None:
    old = static(manifest("p", ctr("c", args=["v1"])))
    new = static(manifest("p", ctr("c", args=["v2"])))
    assert old.uid != new.uid and old.meta.name == new.meta.name
    async with harness() as h:
        h.set_pods(old)
        await h.until(lambda: len(h.runtime.running()) == 1)
        h.set_pods(new)
        await h.until(lambda: len(h.runtime.running()) == 1 and len(h.runtime.stops) == 1)
        await h.manager.wait_terminated()
        [running] = h.runtime.running()
        assert running.labels["io.kubernetes.pod.uid"] == new.uid
        assert [p.uid for p in h.manager.list_pods()] == [new.uid]


async def test_max_pods_rejects_with_out_of_pods() -> None:
    pods = [static(manifest(f"p{i}")) for i in range(3)]
    async with harness(max_pods=2) as h:
        h.set_pods(*pods)
        await h.until(lambda: len(h.runtime.running()) == 2)
        rejected = h.pod(pods[2]).status
        assert rejected is not None and rejected.phase == "Failed"
        assert rejected.reason == "OutOfpods"
        assert rejected.message == (
            "Pod Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2"
        )
        assert len(h.manager.list_pods()) == 3


async def test_missing_image_err_image_pull_then_image_pull_backoff() -> None:
    pod = static(manifest("p", {"name": "c", "image": "nosuch:1.0"}))
    async with harness() as h:
        h.runtime.hide_image("nosuch:1.0")
        h.set_pods(pod)
        await h.settle()
        w = h.status(pod, "c").state.waiting
        assert w.reason == "ErrImagePull" and "nosuch" in w.message
        await h.advance(1.5)
        w = h.status(pod, "c").state.waiting
        assert w.reason == "ImagePullBackOff"
        assert w.message == 'Back-off pulling image "nosuch:1.0"'
        assert h.pod_status(pod).phase == "Pending"
        h.runtime.add_image("nosuch:1.0")
        await h.until(lambda: len(h.runtime.running()) == 1, max_s=30)


async def test_unresolvable_env_is_create_container_config_error() -> None:
    c = ctr("c", env=[{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
    pod = static(manifest("p", c))
    async with harness() as h:
        h.set_pods(pod)
        await h.settle()
        w = h.status(pod, "c").state.waiting
        assert w.reason == "CreateContainerConfigError"
        assert "spec.containers[0].env[0].valueFrom" in w.message


async def test_create_failure_is_create_container_error_and_retried() -> None:
    pod = static(manifest("p", ctr("c")))
    async with harness() as h:
        h.runtime.fail_create("c", "no such working dir")
        h.set_pods(pod)
        await h.settle()
        w = h.status(pod, "c").state.waiting
        assert w.reason == "CreateContainerError" and w.message == "no such working dir"
        h.runtime.clear_create_failure("c")
        await h.until(lambda: len(h.runtime.running()) == 1, max_s=15)


async def test_env_and_command_expansion_reach_the_runtime() -> None:
    c = ctr(
        "c",
        command=["echo", "$(A)-$(B)", "$$(A)", "$(NOPE)"],
        env=[{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)y"}],
    )
    pod = static(manifest("p", c))
    async with harness() as h:
        h.set_pods(pod)
        await h.until(lambda: len(h.runtime.running()) == 1)
        cfg = h.runtime._containers[h.runtime.running()[0].id].config
        assert cfg.envs == (("A", "x"), ("B", "xy"))
        assert cfg.command == ("echo", "x-xy", "$(A)", "$(NOPE)")
        assert cfg.log_path == "c/0.log"


async def test_agent_restart_adopts_running_containers_without_duplicates() -> None:
    pod = static(manifest("p", ctr("a"), ctr("crash")))
    async with harness() as h1:
        h1.runtime.script("crash", exit_code=1, after_s=2)
        h1.set_pods(pod)
        await h1.until(lambda: h1.status(pod, "crash").restart_count >= 2)
        runtime, clock = h1.runtime, h1.clock
        starts_before = list(runtime.started)
    # the first agent is gone; its containers were left running
    assert any(c.name == "a" for c in runtime.running())
    async with harness(runtime=runtime, clock=clock) as h2:
        h2.set_pods(pod)
        await h2.settle()
        await h2.advance(1)
        assert [s for s in runtime.started if s[0] == "a"] == [("a", 0)]
        a = h2.status(pod, "a")
        assert a.state.running is not None and a.restart_count == 0
        assert h2.status(pod, "crash").restart_count >= 2
        assert len(runtime.started) <= len(starts_before) + 1
        assert len(await runtime.list_pod_sandboxes()) == 1


async def test_orphaned_sandboxes_are_removed_once_sources_have_reported() -> None:
    pod = static(manifest("gone", ctr("c")))
    async with harness() as h1:
        h1.set_pods(pod)
        await h1.until(lambda: len(h1.runtime.running()) == 1)
        runtime, clock = h1.runtime, h1.clock
    async with harness(runtime=runtime, clock=clock) as h2:
        h2.set_pods()
        assert await h2.manager.remove_orphans() == 1
        assert await runtime.list_pod_sandboxes() == []
        assert runtime.stops[0].timeout_s == 30


async def test_finished_pod_stays_finished_across_agent_restart() -> None:
    pod = static(manifest("job", ctr("c"), restartPolicy="Never"))
    clock_runtime: tuple[FakeRuntime, FakeClock] | None = None
    async with harness() as h1:
        h1.runtime.script("c", exit_code=0, after_s=1)
        h1.set_pods(pod)
        await h1.until(lambda: h1.pod_status(pod).phase == "Succeeded")
        clock_runtime = (h1.runtime, h1.clock)
    runtime, clock = clock_runtime
    async with harness(runtime=runtime, clock=clock) as h2:
        h2.set_pods(pod)
        await h2.advance(5)
        assert h2.pod_status(pod).phase == "Succeeded"
        assert runtime.started == [("c", 0)]


async def test_condition_transition_times_only_move_on_change() -> None:
    pod = static(manifest("p", ctr("c"), restartPolicy="Never"))
    async with harness() as h:
        h.set_pods(pod)
        await h.until(lambda: h.pod_status(pod).phase == "Running")
        before = {c.type: c.last_transition_time for c in h.pod_status(pod).conditions}
        await h.advance(20)
        h.manager.wake(pod.uid)
        await h.settle()
        after = {c.type: c.last_transition_time for c in h.pod_status(pod).conditions}
        assert before == after
        [c] = h.runtime.running()
        h.runtime.exit_container(c.id, 1)
        await h.advance(1)
        ready = {c.type: c for c in h.pod_status(pod).conditions}["Ready"]
        assert ready.status == "False" and ready.last_transition_time > before["Ready"]
        assert h.runtime.running() == []
        assert h.pod_status(pod).phase == "Failed"


async def test_pod_restored_while_stopping_waits_for_the_stop_then_starts_fresh() -> None:
    pod = static(manifest("p", ctr("stubborn"), terminationGracePeriodSeconds=10))
    async with harness() as h:
        h.runtime.ignore_sigterm("stubborn")
        h.set_pods(pod)
        await h.until(lambda: len(h.runtime.running()) == 1)
        h.set_pods()
        await h.advance(2)
        h.set_pods(pod)  # the file came back, same UID, while the old pod is still stopping
        await h.advance(3)
        # the new worker waits: it does not adopt the sandbox being torn down
        worker = h.manager.worker(pod.uid)
        assert worker is not None and worker._sandbox is None
        assert h.runtime.started == [("stubborn", 0)]
        await h.until(lambda: len(h.runtime.stops) == 1 and len(h.runtime.running()) == 1)
        [sandbox] = await h.runtime.list_pod_sandboxes()
        assert sandbox.created_at >= h.clock.now() - 2
        await h.until(lambda: h.pod_status(pod).phase == "Running")


async def test_idle_pods_cost_one_runtime_list_per_second() -> None:
    pods = [static(manifest(f"p{i}", ctr("a"), ctr("b"))) for i in range(20)]
    async with harness() as h:
        h.set_pods(*pods)
        await h.until(lambda: len(h.runtime.running()) == 40)
        await h.advance(5)
        before = h.runtime.calls
        await h.advance(60, step=1.0)
        assert h.runtime.calls - before <= 61
        assert h.manager.sync_loop_healthy()
        stats = h.manager.stats()
        assert stats.running_pods == 20 and stats.running_containers == 40
        assert len(stats.pod_start_durations_s) == 20


async def test_sync_loop_unhealthy_when_relisting_stops() -> None:
    async with harness() as h:
        h.set_pods(static(manifest("p")))
        await h.advance(2)
        assert h.manager.sync_loop_healthy()

        async def broken() -> list[object]:
            raise OSError("runtime gone")

        h.runtime.list_containers = broken  # type: ignore[assignment,method-assign]
        await h.advance(200, step=5.0)
        assert not h.manager.sync_loop_healthy()


async def test_malformed_resources_are_a_config_error_not_a_crash() -> None:
    pod = static(manifest("p", ctr("c", resources={"limits": 5}), ctr("ok")))
    async with harness() as h:
        h.set_pods(pod)
        await h.settle()
        w = h.status(pod, "c").state.waiting
        assert w.reason == "CreateContainerConfigError"
        assert "spec.containers[0].resources.limits" in w.message
        assert h.status(pod, "ok").state.running is not None
        assert h.manager.stats().sync_errors == 0


async def test_dead_sandbox_is_replaced_and_restart_counts_carry_over() -> None:
    pod = static(manifest("p", ctr("c")))
    async with harness() as h:
        h.set_pods(pod)
        await h.until(lambda: len(h.runtime.running()) == 1)
        [old] = await h.runtime.list_pod_sandboxes()
        await h.runtime.stop_pod_sandbox(old.id)  # the sandbox died (a reboot, a crash)
        await h.until(lambda: len(h.runtime.running()) == 1)
        [new] = await h.runtime.list_pod_sandboxes()
        assert new.id != old.id and new.attempt == 1
        assert h.status(pod, "c").restart_count == 1
        assert h.pod_status(pod).phase == "Running"


async def test_finished_pods_do_not_count_against_max_pods() -> None:
    job = static(manifest("job", ctr("once"), restartPolicy="Never"))
    later = static(manifest("later"))
    async with harness(max_pods=1) as h:
        h.runtime.script("once", exit_code=0, after_s=1)
        h.set_pods(job)
        await h.until(lambda: h.pod_status(job).phase == "Succeeded")
        h.set_pods(job, later)
        await h.until(lambda: h.pod_status(later).phase == "Running")


async def test_generation_moves_with_every_change_list_pods_would_show() -> None:
    pod = static(manifest("gen", ctr("a")))
    async with harness() as h:
        g0 = h.manager.generation()
        h.set_pods(pod)
        await h.until(lambda: h.pod_status(pod).phase == "Running")
        g1 = h.manager.generation()
        assert g1 > g0
        await h.settle()
        settled = h.manager.generation()
        assert h.manager.generation() == settled  # nothing changed, nothing to re-encode
        h.set_pods()
        await h.until(lambda: h.manager.get_pod_by_uid(pod.uid) is None)
        assert h.manager.generation() > settled

"""Sidecar init containers (``restartPolicy: Always`` on an init container), as upstream 1.29:
started in order and not waited for, restarted whenever they exit, stopped after the app
containers."""

from __future__ import annotations

from pykubelet.api import Container, Pod
from pykubelet.runtime.types import ContainerState
from tests.pods.harness import Harness, ctr, harness, manifest, static


def _sidecar_pod(restart_policy: str = "Always") -> Pod:
    return static(
        manifest(
            "p",
            ctr("app"),
            initContainers=[
                ctr("proxy", restartPolicy="Always"),
                ctr("setup"),
            ],
            restartPolicy=restart_policy,
        )
    )


def _state(h: Harness, name: str) -> ContainerState | None:
    running = {c.name: c.state for c in h.runtime.running()}
    return running.get(name)


async def test_sidecar_starts_first_and_the_pod_runs_beside_it() -> None:
    async with harness() as h:
        h.runtime.script("setup", exit_code=0, after_s=1)
        pod = _sidecar_pod()
        h.set_pods(pod)
        await h.until(lambda: {c.name for c in h.runtime.running()} == {"proxy", "app"})
        status = h.pod(pod).status
        assert status is not None
        assert status.phase == "Running"
        initialized = next(c for c in status.conditions if c.type == "Initialized")
        ready = next(c for c in status.conditions if c.type == "Ready")
        assert initialized.status == "True" and ready.status == "True"
        proxy = status.find_container("proxy")
        assert proxy is not None and proxy.ready and proxy.state.running is not None


async def test_the_next_init_container_waits_for_the_sidecar_to_be_running() -> None:
    created: list[str] = []
    async with harness() as h:
        h.runtime.script("setup", exit_code=0, after_s=1)
        h.runtime.fail_create("proxy", "no proxy today")
        pod = _sidecar_pod()
        h.set_pods(pod)
        await h.advance(3)
        created = [c.name for c in await h.runtime.list_containers()]
        assert "setup" not in created and "app" not in created
        h.runtime.clear_create_failure("proxy")
        await h.until(lambda: {c.name for c in h.runtime.running()} == {"proxy", "app"}, max_s=30)


async def test_an_exited_sidecar_is_restarted_and_the_app_keeps_running() -> None:
    async with harness() as h:
        h.runtime.script("setup", exit_code=0, after_s=1)
        pod = _sidecar_pod(restart_policy="Never")
        h.set_pods(pod)
        await h.until(lambda: {c.name for c in h.runtime.running()} == {"proxy", "app"})
        app_id = next(c.id for c in h.runtime.running() if c.name == "app")
        proxy_id = next(c.id for c in h.runtime.running() if c.name == "proxy")
        h.runtime.exit_container(proxy_id, 1)
        # restarted despite the pod's restartPolicy Never, after the crash back-off
        await h.until(lambda: h.status(pod, "proxy").restart_count == 1, max_s=30)
        await h.until(lambda: _state(h, "proxy") is ContainerState.RUNNING)
        assert app_id in {c.id for c in h.runtime.running()}
        assert h.pod_status(pod).phase == "Running"


async def test_pod_succeeds_when_the_app_is_done_and_the_sidecar_is_stopped() -> None:
    async with harness() as h:
        h.runtime.script("setup", exit_code=0, after_s=1)
        h.runtime.script("app", exit_code=0, after_s=5)
        pod = _sidecar_pod(restart_policy="Never")
        h.set_pods(pod)
        await h.until(lambda: h.pod_status(pod).phase == "Succeeded", max_s=30)
        await h.until(lambda: h.runtime.running() == [])


async def test_termination_stops_app_containers_before_the_sidecars() -> None:
    order: list[str] = []

    async def pre_stop(pod: Pod, c: Container, cid: str, grace: float) -> float:
        order.append(c.name)
        return grace

    async with harness(pre_stop=pre_stop) as h:
        pod = static(
            manifest(
                "p",
                ctr("app"),
                initContainers=[
                    ctr("logs", restartPolicy="Always"),
                    ctr("proxy", restartPolicy="Always"),
                ],
            )
        )
        h.set_pods(pod)
        await h.until(lambda: len(h.runtime.running()) == 3)
        h.set_pods()
        await h.manager.wait_terminated()
        assert order == ["app", "proxy", "logs"]


def test_restart_policy_is_refused_on_app_containers_and_values_other_than_always() -> None:
    import pytest

    from pykubelet.core.errors import InvalidInput

    with pytest.raises(InvalidInput) as e:
        Pod.from_dict(manifest("p", ctr("app", restartPolicy="Always")))
    assert e.value.field == "spec.containers[0].restartPolicy"
    with pytest.raises(InvalidInput) as e:
        Pod.from_dict(manifest("p", ctr("app"), initContainers=[ctr("i", restartPolicy="Never")]))
    assert e.value.field == "spec.initContainers[0].restartPolicy"

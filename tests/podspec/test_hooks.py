"""Lifecycle hooks with real processes and servers: failures carry upstream's shape, and preStop
never outlives the grace period."""

from __future__ import annotations

import asyncio
import os

import pytest

from pykubelet.core.clock import FakeClock
from pykubelet.podspec.actions import ExecAction, HttpGetAction, ProbeTarget, SleepAction
from pykubelet.podspec.hooks import HookFailed, container_hook, run_post_start, run_pre_stop
from tests.podspec.probefix import HostExecRunner, http_responder, make_pod, serve, wait_until

TARGET = ProbeTarget(container_id="c1")
POD = make_pod("hooked", {})


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def test_post_start_exec_failure_is_reported_as_upstream() -> None:
    with pytest.raises(HookFailed) as info:
        await run_post_start(
            ExecAction(command=("sh", "-c", "echo nope; exit 1")),
            TARGET,
            HostExecRunner(),
            FakeClock(),
            pod=POD,
            container_name="app",
        )
    assert info.value.reason == "FailedPostStartHook"
    assert str(info.value) == (
        "Exec lifecycle hook (['sh', '-c', 'echo nope; exit 1']) for Container 'app' in Pod "
        "'hooked_default(uid-hooked)' failed - error: nope"
    )


async def test_post_start_http_get() -> None:
    seen: list[bytes] = []
    async with serve("", http_responder(200, seen)) as port:
        await run_post_start(
            HttpGetAction(port=port, path="/started"),
            TARGET,
            HostExecRunner(),
            FakeClock(),
            pod=POD,
            container_name="app",
        )
    assert seen[0].startswith(b"GET /started HTTP/1.1")
    async with serve("", http_responder(500, seen)) as port:
        with pytest.raises(HookFailed, match=r"HTTP lifecycle hook \(/\) .* statuscode: 500"):
            await run_post_start(
                HttpGetAction(port=port),
                TARGET,
                HostExecRunner(),
                FakeClock(),
                pod=POD,
                container_name="app",
            )


async def test_pre_stop_that_outlives_the_grace_period_is_cut_off() -> None:
    clock = FakeClock()
    runner = HostExecRunner()
    stop = asyncio.create_task(
        run_pre_stop(
            ExecAction(command=("sleep", "600")),
            TARGET,
            runner,
            clock,
            pod=POD,
            container_name="app",
            grace_period_s=5,
        )
    )
    await wait_until(lambda: runner.pids != [] and _alive(runner.pids[0]))
    await clock.advance(5)
    async with asyncio.timeout(10):
        remaining = await stop
    assert remaining == 2.0  # upstream's minimum grace for the stop that follows
    assert not _alive(runner.pids[0])  # the hook's process went with it


async def test_pre_stop_returns_the_grace_left() -> None:
    clock = FakeClock()
    stop = asyncio.create_task(
        run_pre_stop(
            SleepAction(seconds=3),
            TARGET,
            HostExecRunner(),
            clock,
            pod=POD,
            container_name="app",
            grace_period_s=30,
        )
    )
    # both the hook's sleep and the grace deadline are waiting on the clock before time moves
    await wait_until(lambda: len(clock._sleepers) == 2)
    await clock.advance(3)
    async with asyncio.timeout(10):
        assert await stop == 27.0


async def test_failed_pre_stop_does_not_block_the_stop() -> None:
    remaining = await run_pre_stop(
        ExecAction(command=("false",)),
        TARGET,
        HostExecRunner(),
        FakeClock(),
        pod=POD,
        container_name="app",
        grace_period_s=30,
    )
    assert remaining == 30.0


def test_hooks_parse_from_the_container() -> None:
    c = make_pod(
        "p",
        {
            "lifecycle": {
                "postStart": {"exec": {"command": ["touch", "/tmp/x"]}},
                "preStop": {"httpGet": {"port": 80, "path": "/bye"}},
            }
        },
    ).spec.containers[0]
    assert container_hook(c, "postStart") == ExecAction(command=("touch", "/tmp/x"))
    assert container_hook(c, "preStop") == HttpGetAction(port=80, path="/bye")
    assert os.sep == "/"

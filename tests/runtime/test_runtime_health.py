"""The runtime's part of the node's Ready condition (upstream's runtimeState messages)."""

from __future__ import annotations

import asyncio

from pykubelet.core.clock import FakeClock
from pykubelet.runtime.fake import FakeRuntime
from pykubelet.runtime.health import RuntimeHealthWatch
from pykubelet.runtime.types import RuntimeHealth


async def test_ready_errors_follow_the_runtime_status() -> None:
    clock = FakeClock()
    rt = FakeRuntime(clock)
    watch = RuntimeHealthWatch(rt, clock)
    assert watch.errors() == ["container runtime status check may not have completed yet"]
    task = asyncio.create_task(watch.run())
    try:
        await clock.advance(0)
        assert watch.errors() == []
        rt.health_answer = RuntimeHealth(
            runtime_ready=True,
            network_ready=False,
            reason="NetworkPluginNotReady",
            message="cni plugin not initialized",
        )
        await clock.advance(5)
        assert watch.errors() == [
            "container runtime network not ready: NetworkReady=false "
            "reason:NetworkPluginNotReady message:cni plugin not initialized"
        ]
        rt.health_answer = RuntimeHealth(runtime_ready=False, network_ready=False)
        await clock.advance(30)  # 30 s since the last healthy answer: not yet down
        assert "container runtime is down" not in watch.errors()
        await clock.advance(5)
        assert watch.errors()[0] == "container runtime is down"
        rt.health_answer = RuntimeHealth(runtime_ready=True, network_ready=True)
        await clock.advance(5)
        assert watch.errors() == []
    finally:
        task.cancel()

"""A pod layer on FakeRuntime + FakeClock: no processes, no real sleeps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from pykubelet.api import Pod, PodStatus
from pykubelet.core.clock import FakeClock
from pykubelet.pods import (
    Backoff,
    PodManager,
    PodUpdate,
    RuntimeConfigBuilder,
    StatusManager,
    UpdateOp,
    WorkerCounters,
    WorkerDeps,
    static_pod_from_document,
)
from pykubelet.pods.cache import ContainerCache
from pykubelet.runtime.fake import FakeRuntime

NODE = "node1"


def manifest(name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": list(containers) or [{"name": "main", "image": "busybox"}], **spec},
    }


def ctr(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox:1.36", **kw}


def static(doc: dict[str, Any], path: str = "") -> Pod:
    name = doc["metadata"]["name"]
    return static_pod_from_document(
        doc, path=path or f"/etc/pods/{name}.yaml", node_name=NODE, seen_at=1_700_000_000.0
    )


@dataclass
class Harness:
    clock: FakeClock
    runtime: FakeRuntime
    manager: PodManager
    statuses: StatusManager

    def set_pods(self, *pods: Pod) -> None:
        self.manager.handle(PodUpdate(op=UpdateOp.SET, source="file", pods=tuple(pods)))

    async def settle(self) -> None:
        for _ in range(50):
            await asyncio.sleep(0)

    async def advance(self, seconds: float, step: float = 0.5) -> None:
        """Move fake time forward in steps, letting workers and the relister run between."""
        remaining = seconds
        while remaining > 1e-9:
            d = min(step, remaining)
            await self.clock.advance(d)
            await self.settle()
            remaining -= d

    async def until(self, cond: Callable[[], bool], *, max_s: float = 60.0) -> None:
        """Advance fake time (bounded) until ``cond`` holds."""
        await self.settle()
        waited = 0.0
        while not cond():
            if waited >= max_s:
                raise AssertionError(f"condition not met within {max_s} fake seconds")
            await self.advance(0.5)
            waited += 0.5

    def pod(self, p: Pod) -> Pod:
        got = self.manager.get_pod_by_uid(p.uid)
        assert got is not None
        return got

    def pod_status(self, p: Pod) -> PodStatus:
        """The pod's status; every pod the manager holds has one once it has been seen."""
        st = self.pod(p).status
        assert st is not None
        return st

    def status(self, p: Pod, name: str) -> Any:
        found = self.pod_status(p).find_container(name)
        assert found is not None
        return found


@contextlib.asynccontextmanager
async def harness(
    *,
    max_pods: int = 110,
    runtime: FakeRuntime | None = None,
    clock: FakeClock | None = None,
    **deps_kw: Any,
) -> AsyncIterator[Harness]:
    clock = clock or FakeClock()
    rt = runtime or FakeRuntime(clock)
    statuses = StatusManager(clock)
    deps = WorkerDeps(
        runtime=rt,
        images=rt,
        statuses=statuses,
        clock=clock,
        builder=RuntimeConfigBuilder(root_dir="/var/lib/pykubelet-test"),
        runtime_name="fake",
        crash_backoff=Backoff(clock),
        image_backoff=Backoff(clock),
        counters=WorkerCounters(),
        host_ip="127.0.0.1",
        cache=ContainerCache(),
        **deps_kw,
    )
    manager = PodManager(deps, max_pods=max_pods)
    task = asyncio.create_task(manager.run())
    h = Harness(clock=clock, runtime=rt, manager=manager, statuses=statuses)
    try:
        await h.settle()
        yield h
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

"""Lifecycle hooks: postStart and preStop with exec, httpGet and sleep, as upstream runs them.

``run_post_start`` raises ``HookFailed`` (reason ``FailedPostStartHook``); the worker then kills
the container, as upstream does. ``run_pre_stop`` runs inside the termination grace period: the
hook gets at most ``grace_period_s`` and the call returns the grace left for the stop itself,
never less than upstream's two-second minimum. A failed or overlong preStop is logged and the
stop goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from pykubelet.api import Container, Pod
from pykubelet.core.clock import Clock
from pykubelet.core.errors import PykubeletError
from pykubelet.podspec.actions import (
    ExecAction,
    ExecRunner,
    Handler,
    HttpGetAction,
    ProbeResult,
    ProbeTarget,
    SleepAction,
    parse_handler,
    run_handler,
)

__all__ = [
    "MIN_GRACE_PERIOD_S",
    "HookFailed",
    "container_hook",
    "run_hook",
    "run_post_start",
    "run_pre_stop",
]

log = logging.getLogger(__name__)

MIN_GRACE_PERIOD_S = 2.0  # upstream's minimumGracePeriodInSeconds
_HOOK_CALL_TIMEOUT_S = 3600.0  # exec/http hooks have no timeout of their own upstream


class HookFailed(PykubeletError):
    """A lifecycle hook failed; ``reason`` is the upstream event reason."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def container_hook(container: Container, which: str) -> Handler | None:
    """``postStart`` or ``preStop`` of a container, parsed (``InvalidInput`` names the field)."""
    lifecycle: Mapping[str, Any] = container.lifecycle or {}
    raw = lifecycle.get(which)
    if raw is None:
        return None
    return parse_handler(
        raw, container, f"container {container.name!r}.lifecycle.{which}", hook=True
    )


def _pod_ref(pod: Pod) -> str:
    return f"{pod.meta.name}_{pod.meta.namespace}({pod.meta.uid})"


async def run_hook(
    handler: Handler,
    target: ProbeTarget,
    runner: ExecRunner,
    clock: Clock,
    *,
    pod: Pod,
    container_name: str,
    reason: str,
) -> None:
    """Run one hook to completion; raise ``HookFailed`` with upstream's message shape."""
    if isinstance(handler, SleepAction):
        await clock.sleep(handler.seconds)
        return
    outcome = await run_handler(handler, target, runner, timeout_s=_HOOK_CALL_TIMEOUT_S)
    if outcome.result is ProbeResult.SUCCESS:
        return
    if isinstance(handler, ExecAction):
        msg = (
            f"Exec lifecycle hook ({list(handler.command)}) for Container {container_name!r} in "
            f"Pod {_pod_ref(pod)!r} failed - error: {outcome.output.strip()}"
        )
    elif isinstance(handler, HttpGetAction):
        msg = (
            f"HTTP lifecycle hook ({handler.path}) for Container {container_name!r} in Pod "
            f"{_pod_ref(pod)!r} failed - error: {outcome.output.strip()}"
        )
    else:
        msg = f"lifecycle hook for Container {container_name!r} failed: {outcome.output}"
    raise HookFailed(msg, reason=reason)


async def run_post_start(
    handler: Handler,
    target: ProbeTarget,
    runner: ExecRunner,
    clock: Clock,
    *,
    pod: Pod,
    container_name: str,
) -> None:
    await run_hook(
        handler,
        target,
        runner,
        clock,
        pod=pod,
        container_name=container_name,
        reason="FailedPostStartHook",
    )


async def run_pre_stop(
    handler: Handler,
    target: ProbeTarget,
    runner: ExecRunner,
    clock: Clock,
    *,
    pod: Pod,
    container_name: str,
    grace_period_s: float,
) -> float:
    """Run preStop for at most ``grace_period_s``; return the grace left for SIGTERM→SIGKILL."""
    start = clock.monotonic()
    hook = asyncio.ensure_future(
        run_hook(
            handler,
            target,
            runner,
            clock,
            pod=pod,
            container_name=container_name,
            reason="FailedPreStopHook",
        )
    )
    deadline = asyncio.ensure_future(clock.sleep(grace_period_s))
    try:
        await asyncio.wait((hook, deadline), return_when=asyncio.FIRST_COMPLETED)
    finally:
        deadline.cancel()
        if not hook.done():
            hook.cancel()
            log.warning(
                "preStop hook of container %s in %s outlived the grace period (%gs)",
                container_name,
                pod.full_name,
                grace_period_s,
            )
        await asyncio.gather(hook, deadline, return_exceptions=True)
    if hook.done() and not hook.cancelled() and (err := hook.exception()) is not None:
        log.warning("%s", err)
    remaining = grace_period_s - (clock.monotonic() - start)
    return max(remaining, MIN_GRACE_PERIOD_S)

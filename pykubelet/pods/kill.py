"""How a pod is stopped and removed, as the kubelet's ``killPod`` does it: every running
app container at once (each after its preStop hook, within the grace period), then the
sidecars in reverse order (upstream 1.29), the pod's exit callbacks, its sandboxes, and every
record of it the pod layer keeps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from pykubelet.api import Pod
from pykubelet.pods.runtime_config import LABEL_POD_UID
from pykubelet.pods.worker_deps import WorkerDeps
from pykubelet.runtime.errors import RuntimeFailure
from pykubelet.runtime.types import ContainerState, ContainerStatus

__all__ = ["MIN_GRACE_S", "kill_pod", "stop_container", "stop_containers"]

log = logging.getLogger(__name__)

MIN_GRACE_S = 2.0  # upstream minimumGracePeriodInSeconds


async def kill_pod(
    d: WorkerDeps,
    pod: Pod,
    grace: float,
    announced: set[str],
    *,
    final_status: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Stop and remove ``pod``. ``announced`` (the containers the exit callbacks were told
    started) is emptied as each is told it exited. ``final_status``, when given, publishes
    the status after the stop (node mode: the API pod's last word). The status itself is the
    worker's to keep or drop."""
    sandboxes = await d.runtime.list_pod_sandboxes({LABEL_POD_UID: pod.uid})
    containers = [c for sb in sandboxes for c in await d.runtime.list_containers(sb.id)]
    await stop_containers(d, pod, containers, grace)
    if final_status is not None:
        await final_status()
    for cid in list(announced):
        announced.discard(cid)
        if d.on_container_exited is not None:
            await d.on_container_exited(pod, cid)
    for sb in sandboxes:
        await d.runtime.stop_pod_sandbox(sb.id)
        await d.runtime.remove_pod_sandbox(sb.id)
    if d.on_pod_removed is not None:
        await d.on_pod_removed(pod)
    d.crash_backoff.forget(f"{pod.uid}/")
    d.image_backoff.forget(f"{pod.uid}/")
    log.info("pod %s stopped and removed", pod.full_name)


async def stop_containers(
    d: WorkerDeps, pod: Pod, containers: Sequence[ContainerStatus], grace: float
) -> None:
    """Stop the running ones among ``containers``, each after its preStop hook: the app
    containers at once, then the sidecars one by one in reverse order."""
    grace = max(grace, MIN_GRACE_S)
    running = {c.name: c for c in containers if c.state is ContainerState.RUNNING}
    sidecars = [c.name for c in pod.spec.init_containers if c.is_sidecar]
    await asyncio.gather(
        *(stop_container(d, pod, c, grace) for name, c in running.items() if name not in sidecars)
    )
    for name in reversed(sidecars):
        if name in running:
            await stop_container(d, pod, running[name], grace)


async def stop_container(d: WorkerDeps, pod: Pod, c: ContainerStatus, grace: float) -> None:
    """One container: its preStop hook, then SIGTERM, the grace left, SIGKILL."""
    grace = max(grace, MIN_GRACE_S)
    spec = pod.spec.container(c.name)
    if d.pre_stop is not None and spec is not None:
        with contextlib.suppress(RuntimeFailure):
            grace = max(await d.pre_stop(pod, spec, c.id, grace), MIN_GRACE_S)
    await d.runtime.stop_container(c.id, grace)

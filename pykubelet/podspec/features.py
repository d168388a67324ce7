"""``PodSpecLayer``: the pod-spec features plugged into the pod workers' extension points.

One object per node owns the volumes, the prober and the per-pod facts (IPs, image users) the
translations need, and offers exactly the callables ``WorkerDeps`` and ``RuntimeConfigBuilder``
take: ``value_from`` (downward API env), ``container_config`` (mounts, securityContext, probe and
hook validation), ``prepare_pod`` (volumes), ``on_container_started`` (postStart),
``on_container_running``/``on_container_exited`` (probes), ``pre_stop`` and ``on_pod_removed``.
Probe verdicts come back through ``probe_changed``: readiness wakes the pod's worker so status is
republished; a liveness or startup failure stops the container (after its preStop hook, within
the probe's grace period) and the worker restarts it by ``restartPolicy``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from pykubelet.api import Container, Pod
from pykubelet.core.clock import Clock
from pykubelet.core.errors import InvalidInput
from pykubelet.pods.runtime_config import LABEL_POD_UID
from pykubelet.pods.termination import (
    TERMINATION_MESSAGE_ANNOTATION,
    create_message_file,
    message_file_path,
)
from pykubelet.podspec.actions import ProbeResult, ProbeTarget
from pykubelet.podspec.downward import (
    NodeAllocatable,
    PodFacts,
    check_env_from,
    resolve_value_from,
)
from pykubelet.podspec.hooks import HookFailed, container_hook, run_post_start, run_pre_stop
from pykubelet.podspec.prober import ProbeChange, Prober, ProbeRecorder, ProbeType, container_probes
from pykubelet.podspec.security import container_security
from pykubelet.podspec.volumes import PodVolumes, PreparedVolume
from pykubelet.runtime.errors import RuntimeFailure
from pykubelet.runtime.protocol import ImageService, Runtime
from pykubelet.runtime.types import (
    ContainerConfig,
    ContainerStatus,
    Mount,
    RuntimeFeatures,
    SandboxState,
    SandboxStatus,
)

__all__ = ["PodSpecLayer"]

log = logging.getLogger(__name__)


class PodSpecLayer:
    """Construct once in the composition root; ``close()`` at shutdown. No I/O in ``__init__``."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        images: ImageService,
        clock: Clock,
        pods_dir: str,
        node_name: str,
        host_ip: str,
        allocatable: NodeAllocatable,
        recorder: ProbeRecorder | None = None,
        wake: Callable[[str], None] | None = None,
    ) -> None:
        self._runtime = runtime
        self._images = images
        self._clock = clock
        self._node_name = node_name
        self._host_ip = host_ip
        self._allocatable = allocatable
        self._wake = wake
        self.volumes = PodVolumes(pods_dir)
        self.prober = Prober(runtime, clock, self, recorder)
        self._ips: dict[str, tuple[str, ...]] = {}  # pod uid -> sandbox IPs
        self._image_users: dict[str, str] = {}  # image ref -> its config User
        self._image_rootfs: dict[str, bool] = {}  # image ref -> has a root filesystem of its own
        self._pods_dir = pods_dir
        self._prepared: dict[str, dict[str, PreparedVolume]] = {}
        self._kills: set[asyncio.Task[None]] = set()
        self._pods: dict[str, Pod] = {}  # uid -> latest pod seen, for probe-driven kills

    def set_wake(self, wake: Callable[[str], None]) -> None:
        """The pod manager's ``wake(uid)``; set after the manager is built (it takes our deps)."""
        self._wake = wake

    # ----- RuntimeConfigBuilder extension points -----

    def facts(self, pod: Pod) -> PodFacts:
        return PodFacts.of(
            pod,
            node_name=self._node_name,
            host_ip=self._host_ip,
            pod_ips=self._ips.get(pod.uid, ()) or (self._host_ip,) * pod.spec.host_network,
        )

    def value_from(
        self, pod: Pod, container: Container, source: Mapping[str, Any], path: str
    ) -> str:
        name = path.rsplit(".valueFrom", 1)[0]
        return resolve_value_from(
            container, source, self.facts(pod), self._allocatable, name=name, at=path
        )

    def container_config(
        self, pod: Pod, container: Container, config: ContainerConfig
    ) -> ContainerConfig:
        """Mounts and security; validates probes and hooks so a bad one is a config error."""
        where = f"container {container.name!r}"
        raw = _raw_container(pod, container.name)
        check_env_from(container, raw.get("envFrom") or [])
        container_probes(container, where)
        container_hook(container, "postStart")
        container_hook(container, "preStop")
        eff = container_security(
            pod,
            container,
            image_user=self._image_users.get(container.image, ""),
            seccomp=RuntimeFeatures.of(self._runtime).seccomp,
        )
        volumes = self._prepared.get(pod.uid, {})
        mounts = self.volumes.container_mounts(container, volumes, where=where)
        annotations = dict(config.annotations)
        if container.termination_message_path and self._image_rootfs.get(container.image):
            # Only into an image's own root filesystem: with the host's root (image "host")
            # a bind mount would create the target on the host itself.
            # created by prepare_container, off the event loop
            host_file = message_file_path(self._pods_dir, pod.uid, container.name, config.attempt)
            mounts = (
                *mounts,
                Mount(container_path=container.termination_message_path, host_path=host_file),
            )
            annotations[TERMINATION_MESSAGE_ANNOTATION] = host_file
        return replace(
            config,
            mounts=(*config.mounts, *mounts),
            security=eff.config,
            annotations=annotations,
        )

    # ----- WorkerDeps extension points -----

    async def prepare_container(self, config: ContainerConfig) -> None:
        """What must exist on the host before the runtime creates the container: its
        termination-message file (a new inode: done in a worker thread)."""
        path = config.annotations.get(TERMINATION_MESSAGE_ANNOTATION, "")
        if path:
            try:
                await asyncio.to_thread(create_message_file, path)
            except OSError as e:
                raise InvalidInput(
                    f"container {config.name!r}: cannot create its terminationMessagePath "
                    f"file {path}: {e.strerror}",
                    field="terminationMessagePath",
                ) from e

    async def prepare_pod(self, pod: Pod) -> None:
        self._pods[pod.uid] = pod
        for s in await self._runtime.list_pod_sandboxes({LABEL_POD_UID: pod.uid}):
            if s.state is SandboxState.READY:
                ips = tuple(ip for ip in (s.ip, *s.additional_ips) if ip)
                self._ips[pod.uid] = ips
        for c in pod.spec.all_containers():
            if c.image not in self._image_users:
                info = await self._images.image_status(c.image)
                if info is not None:
                    self._image_users[c.image] = info.config_user
                    self._image_rootfs[c.image] = not info.host_root
        fs_group = (pod.spec.security_context or {}).get("fsGroup")
        self._prepared[pod.uid] = await self.volumes.setup(
            pod,
            self.facts(pod),
            self._allocatable,
            fs_group=fs_group if isinstance(fs_group, int) else None,
        )

    async def _target(self, container_id: str) -> ProbeTarget:
        status = await self._runtime.container_status(container_id)
        sandbox = await self._runtime.pod_sandbox_status(status.sandbox_id)
        return _target_of(container_id, sandbox)

    async def on_container_started(self, pod: Pod, container: Container, cid: str) -> None:
        self._pods[pod.uid] = pod
        hook = container_hook(container, "postStart")
        if hook is None:
            return
        try:
            await run_post_start(
                hook,
                await self._target(cid),
                self._runtime,
                self._clock,
                pod=pod,
                container_name=container.name,
            )
        except HookFailed as e:
            log.warning("%s: %s; killing the container", e.reason, e)
            await self._runtime.stop_container(cid, _grace(pod, None))

    async def on_container_running(
        self, pod: Pod, container: Container, status: ContainerStatus, sandbox: SandboxStatus
    ) -> None:
        self._pods[pod.uid] = pod
        try:
            specs = container_probes(container, f"container {container.name!r}")
        except InvalidInput as e:  # an adopted container from an older, broken spec
            log.warning("pod %s: not probing %s: %s", pod.full_name, container.name, e)
            return
        if specs:
            self.prober.watch(pod, container, _target_of(status.id, sandbox), specs)

    async def on_container_exited(self, pod: Pod, cid: str) -> None:
        await self.prober.unwatch(cid)

    def started(self, container_id: str) -> bool | None:
        """For the status builder: False while a startup probe has not succeeded."""
        if not self.prober.watching(container_id):
            return None
        return self.prober.started(container_id)

    def readiness(self, container_id: str) -> bool | None:
        """For the status builder: None without readiness/startup probes (ready when running)."""
        if self.prober.result(container_id, ProbeType.READINESS) is None and (
            self.prober.result(container_id, ProbeType.STARTUP) is None
        ):
            return None
        return self.prober.ready(container_id)

    async def pre_stop(self, pod: Pod, container: Container, cid: str, grace_s: float) -> float:
        hook = container_hook(container, "preStop")
        if hook is None:
            return grace_s
        try:
            target = await self._target(cid)
        except RuntimeFailure:
            return grace_s
        return await run_pre_stop(
            hook,
            target,
            self._runtime,
            self._clock,
            pod=pod,
            container_name=container.name,
            grace_period_s=grace_s,
        )

    async def on_pod_removed(self, pod: Pod) -> None:
        await self.volumes.cleanup(pod.uid)
        for store in (self._ips, self._prepared, self._pods):
            store.pop(pod.uid, None)

    async def cleanup_orphans(self, desired_uids: set[str]) -> list[str]:
        """Remove the volumes of pods that are no longer desired (their manifest went away while
        the agent was down); call after ``PodManager.remove_orphans``. Returns the uids."""
        removed = []
        for uid in self.volumes.pod_uids():
            if uid not in desired_uids:
                await self.volumes.cleanup(uid)
                removed.append(uid)
        return removed

    # ----- probe results -----

    def probe_changed(self, change: ProbeChange) -> None:
        if change.probe_type is ProbeType.READINESS or change.result is ProbeResult.SUCCESS:
            if self._wake is not None:
                self._wake(change.pod_uid)
            return
        task = asyncio.get_running_loop().create_task(self._kill_for_probe(change))
        self._kills.add(task)
        task.add_done_callback(self._kills.discard)

    async def _kill_for_probe(self, change: ProbeChange) -> None:
        pod = self._pods.get(change.pod_uid)
        log.info(
            "Container %s failed %s probe, will be restarted",
            change.container_name,
            change.probe_type.value.lower(),
        )
        grace = change.grace_period_s
        try:
            spec = pod.spec.container(change.container_name) if pod is not None else None
            if pod is not None and spec is not None:
                grace = await self.pre_stop(pod, spec, change.container_id, grace)
            await self._runtime.stop_container(change.container_id, grace)
        except RuntimeFailure as e:
            log.warning("could not stop container %s: %s", change.container_id, e)
        if self._wake is not None:
            self._wake(change.pod_uid)

    async def close(self) -> None:
        await self.prober.close()
        for task in list(self._kills):
            task.cancel()
        await asyncio.gather(*self._kills, return_exceptions=True)


def _target_of(container_id: str, sandbox: SandboxStatus) -> ProbeTarget:
    return ProbeTarget(container_id=container_id, netns_path=sandbox.netns_path, pod_ip=sandbox.ip)


def _grace(pod: Pod, probe_grace: float | None) -> float:
    return probe_grace if probe_grace is not None else pod.spec.termination_grace_period_s


def _raw_container(pod: Pod, name: str) -> Mapping[str, Any]:
    spec = pod.raw.get("spec") or {}
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if isinstance(c, Mapping) and c.get("name") == name:
                return c
    return {}

"""What a container needs before it exists: volumes, mounts, the security context, the
downward API, and its termination-message file.

``ContainerSetup`` offers the callables ``RuntimeConfigBuilder`` takes (``value_from``,
``container_config``) and the worker's preparation steps (``prepare_pod`` with the pod's ready
sandbox, ``prepare_container``, ``on_pod_removed``). It remembers per pod only what those
translations need between calls: the sandbox's IPs and the prepared volumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pykubelet.api import Container, Pod
from pykubelet.core.errors import InvalidInput
from pykubelet.pods.termination import (
    TERMINATION_MESSAGE_ANNOTATION,
    create_message_file,
    message_file_path,
)
from pykubelet.podspec.downward import (
    NodeAllocatable,
    PodFacts,
    check_env_from,
    resolve_value_from,
)
from pykubelet.podspec.hooks import container_hook
from pykubelet.podspec.prober import container_probes
from pykubelet.podspec.security import container_security
from pykubelet.podspec.volumes import PodVolumes, PreparedVolume
from pykubelet.runtime.protocol import ImageService
from pykubelet.runtime.types import ContainerConfig, Mount, RuntimeFeatures, SandboxStatus

__all__ = ["ContainerSetup"]


class ContainerSetup:
    """Construct once in the composition root. No I/O in ``__init__``."""

    def __init__(
        self,
        *,
        images: ImageService,
        pods_dir: str,
        node_name: str,
        host_ip: str,
        allocatable: NodeAllocatable,
        features: RuntimeFeatures | None = None,
    ) -> None:
        self._images = images
        self._features = features or RuntimeFeatures()  # e.g. seccomp: refused without it
        self._pods_dir = pods_dir
        self._node_name = node_name
        self._host_ip = host_ip
        self._allocatable = allocatable
        self.volumes = PodVolumes(pods_dir)
        self._ips: dict[str, tuple[str, ...]] = {}  # pod uid -> its sandbox's IPs
        self._prepared: dict[str, dict[str, PreparedVolume]] = {}
        self._image_users: dict[str, str] = {}  # image ref -> its config User
        self._image_rootfs: dict[str, bool] = {}  # image ref -> has a root filesystem of its own

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
            seccomp=self._features.seccomp,
        )
        volumes = self._prepared.get(pod.uid, {})
        mounts = self.volumes.container_mounts(container, volumes, where=where)
        annotations = dict(config.annotations)
        if container.termination_message_path and self._image_rootfs.get(container.image):
            # Only into an image's own root filesystem: with the host's root (image "host")
            # a bind mount would create the target on the host itself. The file is created
            # by prepare_container, off the event loop.
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

    # ----- the worker's preparation steps -----

    async def prepare_pod(self, pod: Pod, sandbox: SandboxStatus) -> None:
        self._ips[pod.uid] = tuple(ip for ip in (sandbox.ip, *sandbox.additional_ips) if ip)
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

    async def on_pod_removed(self, pod: Pod) -> None:
        await self.volumes.cleanup(pod.uid)
        self._ips.pop(pod.uid, None)
        self._prepared.pop(pod.uid, None)

    async def cleanup_orphans(self, desired_uids: set[str]) -> list[str]:
        """Remove the volumes of pods that are no longer desired (their manifest went away while
        the agent was down); call after ``PodManager.remove_orphans``. Returns the uids."""
        removed = []
        for uid in self.volumes.pod_uids():
            if uid not in desired_uids:
                await self.volumes.cleanup(uid)
                removed.append(uid)
        return removed


def _raw_container(pod: Pod, name: str) -> Mapping[str, Any]:
    spec = pod.raw.get("spec") or {}
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if isinstance(c, Mapping) and c.get("name") == name:
                return c
    return {}

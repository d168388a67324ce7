"""What a container needs before it exists: volumes, mounts, the security context, the
downward API, and its termination-message file.

``ContainerSetup`` offers the callables ``RuntimeConfigBuilder`` takes (``value_from``,
``container_config``) and the worker's preparation steps (``prepare_pod`` with the pod's ready
sandbox, ``prepare_container``, ``on_pod_removed``). It remembers per pod only what those
translations need between calls: the sandbox's IPs and the prepared volumes.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pykubelet.api import Container, Pod
from pykubelet.core.errors import InvalidInput
from pykubelet.pods.runtime_config import raw_container
from pykubelet.pods.termination import (
    TERMINATION_MESSAGE_ANNOTATION,
    create_message_file,
    message_file_path,
)
from pykubelet.podspec.api_objects import (
    ConfigSource,
    PodObjects,
    env_from_values,
    fetch,
    key_value,
    references,
    token_refresh_s,
    token_requests,
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
        config_source: ConfigSource | None = None,
        features: RuntimeFeatures | None = None,
    ) -> None:
        self._images = images
        self._features = features or RuntimeFeatures()  # e.g. seccomp: refused without it
        self._config_source = config_source  # node mode: ConfigMaps and Secrets
        self._objects: dict[str, PodObjects] = {}  # pod uid -> what it references
        self._tokens_at: dict[str, float] = {}  # pod uid -> when its tokens were requested
        self._refreshing: dict[str, asyncio.Lock] = {}  # pod uid -> held while volumes rewrite
        self._pods_dir = pods_dir
        # upstream's seccomp profile root: <rootDir>/seccomp, beside <rootDir>/pods
        self._seccomp_root = os.path.join(os.path.dirname(pods_dir.rstrip("/")), "seccomp")
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
        objects = self._objects.get(pod.uid)
        if objects is not None and ("configMapKeyRef" in source or "secretKeyRef" in source):
            # an optional reference that is missing leaves the variable empty (upstream: unset)
            return key_value(objects, source, path) or ""
        return resolve_value_from(
            container, source, self.facts(pod), self._allocatable, name=name, at=path
        )

    def container_config(
        self, pod: Pod, container: Container, config: ContainerConfig
    ) -> ContainerConfig:
        """Mounts and security; validates probes and hooks so a bad one is a config error."""
        where = f"container {container.name!r}"
        raw = raw_container(pod, container.name)
        env_from = raw.get("envFrom") or []
        objects = self._objects.get(pod.uid)
        envs = config.envs
        if objects is not None and env_from:
            # envFrom first, explicit env entries override it (as upstream)
            explicit = {k for k, _v in config.envs}
            from_sources = env_from_values(objects, env_from, f"{where}.envFrom")
            envs = (*((k, v) for k, v in from_sources if k not in explicit), *config.envs)
        else:
            check_env_from(container, env_from)
        container_probes(container, where)
        container_hook(container, "postStart")
        container_hook(container, "preStop")
        eff = container_security(
            pod,
            container,
            image_user=self._image_users.get(container.image, ""),
            seccomp=self._features.seccomp,
            seccomp_profile_root=self._seccomp_root,
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
            envs=envs,
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
        if self._config_source is not None:
            self._objects[pod.uid] = await fetch(pod, self._config_source)
            self._tokens_at[pod.uid] = time.monotonic()
        fs_group = (pod.spec.security_context or {}).get("fsGroup")
        self._prepared[pod.uid] = await self.volumes.setup(
            pod,
            self.facts(pod),
            self._allocatable,
            fs_group=fs_group if isinstance(fs_group, int) else None,
            objects=self._objects.get(pod.uid),
        )

    async def refresh_api_volumes(self, pod: Pod) -> bool:
        """Node mode, periodically: read the pod's ConfigMaps and Secrets again and rewrite its
        volumes atomically (running containers see the new files, as upstream's periodic
        remount); tokens are requested again at 80 % of their lifetime. False when the pod
        has nothing to refresh or is not prepared."""
        if self._config_source is None or pod.uid not in self._prepared:
            return False
        if not references(pod) and not token_requests(pod):
            return False
        async with self._refreshing.setdefault(pod.uid, asyncio.Lock()):
            return await self._refresh_locked(pod, self._config_source)

    async def _refresh_locked(self, pod: Pod, source: ConfigSource) -> bool:
        previous = self._objects.get(pod.uid)
        due = token_refresh_s(pod)
        fresh = due is not None and time.monotonic() - self._tokens_at.get(pod.uid, 0.0) < due
        objects = await fetch(pod, source, keep_tokens=previous if fresh else None)
        if pod.uid not in self._prepared:
            return False  # removed while we read: write nothing
        if not fresh:
            self._tokens_at[pod.uid] = time.monotonic()
        self._objects[pod.uid] = objects
        fs_group = (pod.spec.security_context or {}).get("fsGroup")
        self._prepared[pod.uid] = await self.volumes.setup(
            pod,
            self.facts(pod),
            self._allocatable,
            fs_group=fs_group if isinstance(fs_group, int) else None,
            objects=objects,
        )
        return True

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
        self._prepared.pop(pod.uid, None)  # a refresh in flight writes nothing from now on
        async with self._refreshing.pop(pod.uid, asyncio.Lock()):
            await self.volumes.cleanup(pod.uid)
        self._ips.pop(pod.uid, None)
        self._prepared.pop(pod.uid, None)
        self._objects.pop(pod.uid, None)
        self._tokens_at.pop(pod.uid, None)

    async def cleanup_orphans(self, desired_uids: set[str]) -> list[str]:
        """Remove the volumes of pods that are no longer desired (their manifest went away while
        the agent was down); call after ``PodManager.remove_orphans``. Returns the uids."""
        removed = []
        for uid in self.volumes.pod_uids():
            if uid not in desired_uids:
                await self.volumes.cleanup(uid)
                removed.append(uid)
        return removed

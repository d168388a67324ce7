"""Translate a pod and its containers into the runtime's SandboxConfig / ContainerConfig.

Labels and annotations follow upstream ``kuberuntime/labels.go`` so an agent restart (or any CRI
tool) can tell which pod, container and attempt a runtime object belongs to.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pykubelet.api import Container, Pod
from pykubelet.api.quantity import parse_quantity
from pykubelet.core.errors import InvalidInput
from pykubelet.pods.env import ValueFromResolver, build_env, expand_command
from pykubelet.pods.ports import port_mappings
from pykubelet.runtime.types import (
    ContainerConfig,
    LinuxResources,
    NamespaceMode,
    SandboxConfig,
)

__all__ = [
    "ContainerConfigHook",
    "LABEL_CONTAINER_NAME",
    "LABEL_MANAGED",
    "LABEL_POD_NAME",
    "LABEL_POD_NAMESPACE",
    "LABEL_POD_UID",
    "ANNOTATION_GRACE",
    "ANNOTATION_HASH",
    "ANNOTATION_RESTART_COUNT",
    "RuntimeConfigBuilder",
    "linux_resources",
    "parse_cpu_millis",
]

LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_MANAGED = "io.pykubelet.managed"  # only objects with this label are ever adopted/removed
ANNOTATION_RESTART_COUNT = "io.kubernetes.container.restartCount"
ANNOTATION_GRACE = "io.kubernetes.pod.terminationGracePeriod"
# upstream's name; the value is pykubelet's own hash of the container's spec (see container_hash)
ANNOTATION_HASH = "io.kubernetes.container.hash"

# (pod, container, config so far) -> config; the podspec layer adds mounts, security, etc.
ContainerConfigHook = Callable[[Pod, Container, ContainerConfig], ContainerConfig]

CPU_PERIOD_US = 100_000


def parse_cpu_millis(value: Any, path: str) -> int:
    """CPU in millicores, rounded up as ``Quantity.MilliValue`` does."""
    return parse_quantity(value, field=path).milli_value()


def _parse_memory(value: Any, path: str) -> int:
    """Memory in bytes, rounded up as ``Quantity.Value`` does."""
    return parse_quantity(value, field=path).value()


def linux_resources(container: Container, path: str) -> LinuxResources:
    """CPU quota/shares and memory limit as upstream converts them (period 100 ms)."""
    res = container.resources or {}
    limits: Mapping[str, Any] = res.get("limits") or {}
    requests: Mapping[str, Any] = res.get("requests") or {}
    for key, value in (("limits", limits), ("requests", requests)):
        if not isinstance(value, Mapping):
            raise InvalidInput("expected an object", field=f"{path}.resources.{key}")
    quota = shares = memory = 0
    if "cpu" in limits:
        millis = parse_cpu_millis(limits["cpu"], f"{path}.resources.limits.cpu")
        quota = max(1000, millis * CPU_PERIOD_US // 1000)
    cpu_req = requests.get("cpu", limits.get("cpu"))
    if cpu_req is not None:
        shares = max(2, parse_cpu_millis(cpu_req, f"{path}.resources.requests.cpu") * 1024 // 1000)
    else:
        shares = 2  # upstream: BestEffort containers get the minimum
    if "memory" in limits:
        memory = _parse_memory(limits["memory"], f"{path}.resources.limits.memory")
    return LinuxResources(
        cpu_period_us=CPU_PERIOD_US if quota else 0,
        cpu_quota_us=quota,
        cpu_shares=shares,
        memory_limit_bytes=memory,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeConfigBuilder:
    root_dir: str
    cgroup_root: str = ""
    pod_pids_limit: int = -1  # podPidsLimit: -1 or 0 means none, as upstream
    value_from: ValueFromResolver | None = None
    hooks: Sequence[ContainerConfigHook] = field(default=())

    def log_directory(self, pod: Pod) -> str:
        m = pod.meta
        return str(Path(self.root_dir) / "logs" / "pods" / f"{m.namespace}_{m.name}_{m.uid}")

    def sandbox(self, pod: Pod, attempt: int) -> SandboxConfig:
        spec = pod.spec
        labels = {**pod.meta.labels, **self._pod_labels(pod)}
        return SandboxConfig(
            name=pod.meta.name,
            namespace=pod.meta.namespace,
            uid=pod.uid,
            attempt=attempt,
            hostname="" if spec.host_network else (spec.hostname or pod.meta.name)[:63],
            log_directory=self.log_directory(pod),
            network=NamespaceMode.NODE if spec.host_network else NamespaceMode.POD,
            pid=(
                NamespaceMode.NODE
                if spec.host_pid
                else NamespaceMode.POD
                if spec.share_process_namespace
                else NamespaceMode.CONTAINER
            ),
            ipc=NamespaceMode.NODE if spec.host_ipc else NamespaceMode.POD,
            cgroup_parent=f"{self.cgroup_root.strip('/') or 'pykubelet'}/pod{pod.uid}",
            pids_limit=max(0, self.pod_pids_limit),
            port_mappings=port_mappings(pod),
            labels=labels,
            annotations={
                **pod.meta.annotations,
                ANNOTATION_GRACE: str(int(spec.termination_grace_period_s)),
            },
        )

    def container(self, pod: Pod, container: Container, attempt: int, path: str) -> ContainerConfig:
        """Raises ``InvalidInput`` (reported as CreateContainerConfigError)."""
        envs = build_env(pod, container, value_from=self.value_from, path=path)
        config = ContainerConfig(
            name=container.name,
            attempt=attempt,
            image=container.image,
            command=expand_command(container.command, envs),
            args=expand_command(container.args, envs),
            working_dir=container.working_dir,
            envs=envs,
            log_path=f"{container.name}/{attempt}.log",
            stdin=container.stdin,
            stdin_once=container.stdin_once,
            tty=container.tty,
            resources=linux_resources(container, path),
            labels={**self._pod_labels(pod), LABEL_CONTAINER_NAME: container.name},
            annotations={
                ANNOTATION_RESTART_COUNT: str(attempt),
                ANNOTATION_HASH: container_hash(pod, container.name),
                ANNOTATION_GRACE: str(int(pod.spec.termination_grace_period_s)),
                "io.kubernetes.container.terminationMessagePath": (
                    container.termination_message_path
                ),
            },
        )
        for hook in self.hooks:
            config = hook(pod, container, config)
        return replace(config, attempt=attempt)

    @staticmethod
    def _pod_labels(pod: Pod) -> dict[str, str]:
        return {
            LABEL_POD_NAME: pod.meta.name,
            LABEL_POD_NAMESPACE: pod.meta.namespace,
            LABEL_POD_UID: pod.uid,
            LABEL_MANAGED: "true",
        }


def raw_container(pod: Pod, name: str) -> Mapping[str, Any]:
    """The container's object as the pod's source gave it (fields our view does not keep)."""
    spec = pod.raw.get("spec") or {}
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if isinstance(c, Mapping) and c.get("name") == name:
                return c
    return {}


def container_hash(pod: Pod, name: str) -> str:
    """A hash of the container's spec, kept on the container it created: when the spec under
    the same pod UID changes (an image set through the API), the worker restarts the
    container, as upstream does with its own hash of the Go struct (which cannot be
    reproduced, so the value differs). CRC-32 of the canonical JSON, in hex: computed in C, as
    every sync of a running pod compares it."""
    data = json.dumps(raw_container(pod, name), sort_keys=True, separators=(",", ":"))
    return format(zlib.crc32(data.encode()), "x")

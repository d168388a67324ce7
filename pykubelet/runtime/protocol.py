"""The runtime boundary: three small Protocols shaped like CRI.

Pod workers depend on ``Runtime`` and ``ImageService``; the HTTP layer depends on
``StreamingRuntime`` and ``RuntimeInfo``; the agent on ``RuntimeLifecycle``. ``ProcessRuntime``,
``CriRuntime`` and ``FakeRuntime`` implement all five, and neither the pods layer nor the server
can tell them apart (``tests/runtime/contract`` holds them to it). Facts only one runtime has
(a container's host pid, the process runtime's image root filesystem) stay in fields a caller
must treat as optional: ``0``/``""`` means "this runtime does not say".

Contract shared by every method: ids are opaque strings; an unknown id raises
``ContainerNotFound``/``SandboxNotFound`` (except stop/remove, which are idempotent as CRI
requires); methods may block for I/O but never for the lifetime of a container.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from pykubelet.runtime.types import (
    ContainerConfig,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageFsUsage,
    ImageInfo,
    RegistryAuth,
    RuntimeHealth,
    RuntimeVersion,
    SandboxConfig,
    SandboxStatus,
    StreamIO,
)

__all__ = [
    "ImageService",
    "PortConnection",
    "Runtime",
    "RuntimeInfo",
    "RuntimeLifecycle",
    "StreamingRuntime",
]


class Runtime(Protocol):
    """Sandbox and container lifecycle (CRI RuntimeService, minus streaming)."""

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        """Create and start the pod's sandbox (namespaces, cgroup parent); return its id."""
        ...

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop every container of the sandbox and release its network. Idempotent."""
        ...

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        """Remove a stopped sandbox and its containers. Idempotent; unknown ids are fine."""
        ...

    async def pod_sandbox_status(self, sandbox_id: str) -> SandboxStatus: ...

    async def list_pod_sandboxes(
        self, label_selector: Mapping[str, str] | None = None
    ) -> Sequence[SandboxStatus]:
        """Every sandbox, or (as CRI's ``PodSandboxFilter.label_selector``) those whose labels
        include all of ``label_selector``: a pod's worker asks for its own without the runtime
        building every other pod's status."""
        ...

    async def create_container(
        self, sandbox_id: str, config: ContainerConfig, sandbox_config: SandboxConfig
    ) -> str:
        """Prepare (not start) a container in a sandbox; return its id."""
        ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, timeout_s: float) -> None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL. Idempotent."""
        ...

    async def remove_container(self, container_id: str) -> None:
        """Forget a stopped container (its log files stay). Idempotent."""
        ...

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def list_containers(self, sandbox_id: str | None = None) -> Sequence[ContainerStatus]: ...

    async def exec_sync(
        self, container_id: str, cmd: Sequence[str], timeout_s: float | None = None
    ) -> ExecResult:
        """Run a command in the container and collect its output (probes, hooks, /run)."""
        ...


class ImageService(Protocol):
    """The local image store and the pulls that fill it (CRI ImageService).

    The pod layer (``pods/images.py``) decides *whether* to pull (policy, back-off, which
    credentials) and when to remove (image GC); the runtime only does what it is told.
    """

    async def image_status(self, ref: str) -> ImageInfo | None:
        """The image for a reference (``busybox``, ``localhost/busybox:1.35``, ``name@sha256:..``,
        or an image id), or None when it is not stored."""
        ...

    async def pull_image(self, ref: str, auth: RegistryAuth | None = None) -> str:
        """Fetch the image from its registry (``auth`` None: anonymous) and return its id.

        Raises ``ImageNotFound`` (the registry has no such manifest) or ``ImagePullError``
        (unreachable, refused credentials, bad content); the store is left as it was.
        """
        ...

    async def list_images(self) -> Sequence[ImageInfo]:
        """Every stored image once, with its size."""
        ...

    async def remove_image(self, ref: str) -> None:
        """Forget an image (by reference or id) and free its disk. Idempotent. The caller
        (image GC) makes sure no container uses it."""
        ...

    async def image_fs_usage(self) -> ImageFsUsage:
        """Capacity and use of the filesystem holding the images."""
        ...


class PortConnection(Protocol):
    """A byte stream to a port inside a pod (port-forward)."""

    async def read(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes; ``b""`` at EOF."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close_write(self) -> None: ...

    async def close(self) -> None: ...


class StreamingRuntime(Protocol):
    """Interactive streams; the HTTP layer turns protocol frames into ``StreamIO`` for these."""

    async def exec(self, container_id: str, cmd: Sequence[str], io: StreamIO) -> int:
        """Run ``cmd`` in the container wired to ``io``; return its exit code."""
        ...

    async def attach(self, container_id: str, io: StreamIO) -> None:
        """Wire ``io`` to the container's own stdio until the container or the client ends."""
        ...

    async def port_forward(self, sandbox_id: str, port: int) -> PortConnection:
        """Open a TCP connection to ``port`` inside the sandbox's network namespace."""
        ...


class RuntimeInfo(Protocol):
    """Facts about the runtime and its containers for status, logs and stats."""

    async def version(self) -> RuntimeVersion: ...

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        """The latest sample, or None for a container that has gone."""
        ...


class RuntimeLifecycle(Protocol):
    """Start-up and shut-down around the agent's life, and health for the node's Ready."""

    async def start(self) -> None:
        """Connect and check the runtime before any pod syncs; raise ``RuntimeUnavailable``
        with a message naming the setting when it cannot be used."""
        ...

    async def aclose(self) -> None:
        """Release connections and helpers. Containers keep running for the next agent."""
        ...

    async def health(self) -> RuntimeHealth:
        """Whether the runtime and the pod network are ready (CRI ``Status``). Never raises."""
        ...

"""An in-memory runtime implementing Runtime, ImageService, StreamingRuntime and RuntimeInfo.

Driven by the injected Clock, so pod-layer tests run with ``FakeClock`` and never sleep. Knobs
script what containers do: ``script(name, exit_code=…, after_s=…, oom=…)`` makes every container
called ``name`` exit that way after it starts; ``ignore_sigterm(name)`` makes a stop wait for the
whole grace period; ``hide_image(ref)`` makes pulls fail with ``ImageNotFound`` and
``fail_pull(ref, message)`` with ``ImagePullError``; ``image_fs`` sets the image filesystem;
``fail_create(name, message)`` makes CreateContainer fail. ``exit_container`` ends one now.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from pykubelet.core.clock import Clock
from pykubelet.runtime.errors import (
    ContainerNotFound,
    CreateContainerError,
    ImageNotFound,
    ImagePullError,
    SandboxNotFound,
)
from pykubelet.runtime.types import (
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageFsUsage,
    ImageInfo,
    RegistryAuth,
    RuntimeHealth,
    RuntimeVersion,
    SandboxConfig,
    SandboxState,
    SandboxStatus,
    StreamIO,
    labels_match,
)

__all__ = ["FakeRuntime", "Script", "StopRecord"]

SIGTERM_EXIT = 143
SIGKILL_EXIT = 137


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """What a container does once started: exit with ``exit_code`` after ``after_s``."""

    exit_code: int = 0
    after_s: float = 0.0
    oom: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRecord:
    container_id: str
    name: str
    timeout_s: float
    started_at: float  # clock.monotonic() when stop was asked
    finished_at: float
    exit_code: int


@dataclass(slots=True)
class _Sandbox:
    status: SandboxStatus
    config: SandboxConfig


@dataclass(slots=True)
class _Container:
    status: ContainerStatus
    config: ContainerConfig
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class FakeRuntime:
    def __init__(self, clock: Clock, *, name: str = "fake") -> None:
        self._clock = clock
        self._name = name
        self._ids = itertools.count(1)
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._scripts: dict[str, Script] = {}
        self._stubborn: set[str] = set()
        self._missing_images: set[str] = set()  # neither stored nor in the registry
        self._removed_images: set[str] = set()  # stored no more, still in the registry
        self._pull_failures: dict[str, str] = {}
        self._pull_users: dict[str, str] = {}  # ref -> the only username its registry accepts
        self._known_images: dict[str, ImageInfo] = {}  # seen by a status or pull: listed
        self.image_sizes: dict[str, int] = {}  # ref -> size_bytes (default 1024)
        self.image_fs = ImageFsUsage(
            capacity_bytes=1 << 30, available_bytes=1 << 29, images_bytes=0
        )
        self._create_failures: dict[str, str] = {}
        self.stops: list[StopRecord] = []
        self.started: list[tuple[str, int]] = []  # (container name, attempt) in start order
        self.pulls: list[str] = []
        self.pull_auths: list[RegistryAuth | None] = []  # the auth of each pull, in order
        self.pull_delay_s = 0.0  # how long a pull takes (on the injected clock)
        self.pulls_under_way = 0
        self.max_pulls_under_way = 0
        self.calls = 0  # every Runtime call, for "no busy polling" checks
        self.open = False  # RuntimeLifecycle: between start() and aclose()
        self.health_answer = RuntimeHealth(runtime_ready=True, network_ready=True)  # a knob

    # ----- knobs -----

    def script(
        self, name: str, *, exit_code: int = 0, after_s: float = 0.0, oom: bool = False
    ) -> None:
        self._scripts[name] = Script(exit_code=exit_code, after_s=after_s, oom=oom)

    def unscript(self, name: str) -> None:
        self._scripts.pop(name, None)

    def ignore_sigterm(self, name: str) -> None:
        self._stubborn.add(name)

    def hide_image(self, ref: str) -> None:
        """Neither stored nor pullable."""
        self._missing_images.add(_normalize(ref))

    def add_image(self, ref: str) -> None:
        self._missing_images.discard(_normalize(ref))

    def require_auth(self, ref: str, username: str) -> None:
        """Pulls of ``ref`` succeed only with credentials for ``username``."""
        self._pull_users[_normalize(ref)] = username

    def fail_pull(self, ref: str, message: str | None) -> None:
        """Make pulls of ``ref`` raise ``ImagePullError(message)``; None undoes it."""
        if message is None:
            self._pull_failures.pop(_normalize(ref), None)
        else:
            self._pull_failures[_normalize(ref)] = message

    def fail_create(self, name: str, message: str) -> None:
        self._create_failures[name] = message

    def clear_create_failure(self, name: str) -> None:
        self._create_failures.pop(name, None)

    def exit_container(self, container_id: str, exit_code: int, *, oom: bool = False) -> None:
        self._finish(self._get(container_id), exit_code, oom=oom)

    def running(self, name: str | None = None) -> list[ContainerStatus]:
        return [
            c.status
            for c in self._containers.values()
            if c.status.state is ContainerState.RUNNING and (name is None or c.status.name == name)
        ]

    # ----- Runtime -----

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        self.calls += 1
        sid = f"sb{next(self._ids):04d}"
        status = SandboxStatus(
            id=sid,
            name=config.name,
            namespace=config.namespace,
            uid=config.uid,
            attempt=config.attempt,
            state=SandboxState.READY,
            created_at=self._clock.now(),
            ip=""
            if config.network.value == "node"
            else f"10.88.0.{len(self._sandboxes) % 250 + 2}",
            network=config.network,
            cgroup_parent=config.cgroup_parent,
            labels=dict(config.labels),
            annotations=dict(config.annotations),
        )
        self._sandboxes[sid] = _Sandbox(status=status, config=config)
        return sid

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self.calls += 1
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            return
        for c in list(self._containers.values()):
            if c.status.sandbox_id == sandbox_id and c.status.state is ContainerState.RUNNING:
                self._finish(c, SIGKILL_EXIT)
        sb.status = replace(sb.status, state=SandboxState.NOTREADY)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self.calls += 1
        await self.stop_pod_sandbox(sandbox_id)
        self._sandboxes.pop(sandbox_id, None)
        for cid in [k for k, c in self._containers.items() if c.status.sandbox_id == sandbox_id]:
            del self._containers[cid]

    async def pod_sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        self.calls += 1
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            raise SandboxNotFound(sandbox_id)
        return sb.status

    async def list_pod_sandboxes(
        self, label_selector: Mapping[str, str] | None = None
    ) -> Sequence[SandboxStatus]:
        self.calls += 1
        return [
            sb.status
            for sb in self._sandboxes.values()
            if not label_selector or labels_match(sb.status.labels, label_selector)
        ]

    async def create_container(
        self, sandbox_id: str, config: ContainerConfig, sandbox_config: SandboxConfig
    ) -> str:
        self.calls += 1
        if sandbox_id not in self._sandboxes:
            raise SandboxNotFound(sandbox_id)
        if config.name in self._create_failures:
            raise CreateContainerError(self._create_failures[config.name])
        if _normalize(config.image) in self._missing_images:
            raise ImageNotFound(f"image {config.image!r} not found in the local store")
        cid = f"c{next(self._ids):04d}"
        log_path = f"{sandbox_config.log_directory}/{config.log_path}" if config.log_path else ""
        status = ContainerStatus(
            id=cid,
            sandbox_id=sandbox_id,
            name=config.name,
            attempt=config.attempt,
            state=ContainerState.CREATED,
            image=config.image,
            image_ref=_image_id(config.image),
            created_at=self._clock.now(),
            log_path=log_path,
            labels=dict(config.labels),
            annotations=dict(config.annotations),
        )
        self._containers[cid] = _Container(status=status, config=config)
        return cid

    async def start_container(self, container_id: str) -> None:
        self.calls += 1
        c = self._get(container_id)
        c.status = replace(
            c.status, state=ContainerState.RUNNING, started_at=self._clock.now(), pid=4242
        )
        self.started.append((c.status.name, c.status.attempt))
        script = self._scripts.get(c.status.name)
        if script is not None:
            c.task = asyncio.get_running_loop().create_task(self._run_script(c, script))

    async def _run_script(self, c: _Container, script: Script) -> None:
        if script.after_s > 0:
            await self._clock.sleep(script.after_s)
        if c.status.state is ContainerState.RUNNING:
            self._finish(c, SIGKILL_EXIT if script.oom else script.exit_code, oom=script.oom)

    async def stop_container(self, container_id: str, timeout_s: float) -> None:
        self.calls += 1
        c = self._containers.get(container_id)
        if c is None or c.status.state is not ContainerState.RUNNING:
            return
        t0 = self._clock.monotonic()
        code = SIGTERM_EXIT if timeout_s > 0 else SIGKILL_EXIT  # grace 0: SIGKILL, as CRI
        if c.status.name in self._stubborn and timeout_s > 0:
            await self._clock.sleep(timeout_s)
            code = SIGKILL_EXIT
        elif c.status.name in self._stubborn:
            code = SIGKILL_EXIT
        if c.status.state is ContainerState.RUNNING:
            self._finish(c, code)
        self.stops.append(
            StopRecord(
                container_id=container_id,
                name=c.status.name,
                timeout_s=timeout_s,
                started_at=t0,
                finished_at=self._clock.monotonic(),
                exit_code=c.status.exit_code,
            )
        )

    async def remove_container(self, container_id: str) -> None:
        self.calls += 1
        c = self._containers.pop(container_id, None)
        if c is not None and c.task is not None:
            c.task.cancel()

    async def container_status(self, container_id: str) -> ContainerStatus:
        self.calls += 1
        return self._get(container_id).status

    async def list_containers(self, sandbox_id: str | None = None) -> Sequence[ContainerStatus]:
        self.calls += 1
        return [
            c.status
            for c in self._containers.values()
            if sandbox_id is None or c.status.sandbox_id == sandbox_id
        ]

    async def exec_sync(
        self, container_id: str, cmd: Sequence[str], timeout_s: float | None = None
    ) -> ExecResult:
        self.calls += 1
        c = self._get(container_id)
        if c.status.state is not ContainerState.RUNNING:
            raise ContainerNotFound(f"container {container_id} is not running")
        return ExecResult(exit_code=0, stdout=" ".join(cmd).encode(), stderr=b"")

    # ----- ImageService -----

    async def image_status(self, ref: str) -> ImageInfo | None:
        ref = _normalize(ref)
        if ref.startswith("sha256:"):
            return next((i for i in self._known_images.values() if i.id == ref), None)
        if ref in self._missing_images or ref in self._removed_images:
            return None
        info = self._known_images.get(ref)
        if info is None:
            size = self.image_sizes.get(ref, 1024)
            info = ImageInfo(id=_image_id(ref), repo_tags=(ref,), size_bytes=size)
            self._known_images[ref] = info
        return info

    async def pull_image(self, ref: str, auth: RegistryAuth | None = None) -> str:
        self.pulls.append(ref)
        self.pull_auths.append(auth)
        self.pulls_under_way += 1
        self.max_pulls_under_way = max(self.max_pulls_under_way, self.pulls_under_way)
        try:
            if self.pull_delay_s:
                await self._clock.sleep(self.pull_delay_s)
        finally:
            self.pulls_under_way -= 1
        norm = _normalize(ref)
        if norm in self._pull_failures:
            raise ImagePullError(self._pull_failures[norm])
        user = self._pull_users.get(norm)
        if user is not None and (auth is None or auth.username != user):
            raise ImagePullError(f"pulling {ref}: unauthorized")
        self._removed_images.discard(norm)
        info = await self.image_status(ref)
        if info is None:
            raise ImageNotFound(f"image {ref!r} not found in the registry")
        return info.id

    async def list_images(self) -> Sequence[ImageInfo]:
        return [
            i
            for r, i in self._known_images.items()
            if r not in self._removed_images and r not in self._missing_images
        ]

    async def remove_image(self, ref: str) -> None:
        for r, i in self._known_images.items():
            if _normalize(ref) in (r, i.id):
                self._removed_images.add(r)

    async def image_fs_usage(self) -> ImageFsUsage:
        return self.image_fs

    # ----- StreamingRuntime / RuntimeInfo -----

    async def exec(self, container_id: str, cmd: Sequence[str], io: StreamIO) -> int:
        result = await self.exec_sync(container_id, cmd)
        if io.stdout is not None:
            await io.stdout(result.stdout)
        return result.exit_code

    async def attach(self, container_id: str, io: StreamIO) -> None:
        await self._get(container_id).exited.wait()

    async def port_forward(self, sandbox_id: str, port: int) -> _EchoConnection:
        if sandbox_id not in self._sandboxes:
            raise SandboxNotFound(sandbox_id)
        return _EchoConnection()

    async def version(self) -> RuntimeVersion:
        return RuntimeVersion(runtime_name=self._name, runtime_version="0.1.0")

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        c = self._containers.get(container_id)
        if c is None:
            return None
        return ContainerStats(container_id=container_id, timestamp=self._clock.now())

    # ----- RuntimeLifecycle -----

    async def start(self) -> None:
        self.open = True

    async def aclose(self) -> None:
        self.open = False

    async def health(self) -> RuntimeHealth:
        return self.health_answer

    # ----- internals -----

    def _get(self, container_id: str) -> _Container:
        c = self._containers.get(container_id)
        if c is None:
            raise ContainerNotFound(container_id)
        return c

    def _finish(self, c: _Container, exit_code: int, *, oom: bool = False) -> None:
        reason = "OOMKilled" if oom else ("Completed" if exit_code == 0 else "Error")
        c.status = replace(
            c.status,
            state=ContainerState.EXITED,
            exit_code=exit_code,
            reason=reason,
            finished_at=self._clock.now(),
            pid=0,
        )
        c.exited.set()


class _EchoConnection:
    """port_forward on the fake: whatever is written comes back."""

    def __init__(self) -> None:
        self._q: asyncio.Queue[bytes] = asyncio.Queue()

    async def read(self, n: int = 65536) -> bytes:
        return await self._q.get()

    async def write(self, data: bytes) -> None:
        await self._q.put(data)

    async def close_write(self) -> None:
        await self._q.put(b"")

    async def close(self) -> None:
        await self._q.put(b"")


def _normalize(ref: str) -> str:
    return ref if ":" in ref.rsplit("/", 1)[-1] or "@" in ref else f"{ref}:latest"


def _image_id(ref: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(_normalize(ref).encode()).hexdigest()

"""``CriRuntime``: the runtime boundary implemented by a CRI v1 runtime (containerd) over gRPC.

It only translates: containerd keeps every record, so a restarted agent finds its pods through
``ListPodSandbox``/``ListContainers``. Two caches save RPCs and are safe to lose: container →
sandbox (CRI's ContainerStatus does not say), and the status of EXITED containers (final).
Streaming goes through ``streams.py``: pykubelet terminates the client's stream and is itself
the client of containerd's streaming server, so audit and session recording see every byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pykubelet.core.clock import Clock, SystemClock
from pykubelet.core.errors import InvalidInput
from pykubelet.network.localnet import LocalnetGuard
from pykubelet.network.types import NetworkError
from pykubelet.runtime.cgroups import CgroupLayout, discover_cgroups
from pykubelet.runtime.cri import convert
from pykubelet.runtime.cri.client import CriClient
from pykubelet.runtime.cri.streams import CriPortConnection, run_attach, run_exec
from pykubelet.runtime.cri.v1 import api_pb2 as pb
from pykubelet.runtime.errors import (
    ContainerNotFound,
    CreateContainerError,
    ExecTimeout,
    ImageNotFound,
    ImagePullError,
    RuntimeFailure,
    RuntimeUnavailable,
    SandboxNotFound,
)
from pykubelet.runtime.logrotate import needs_rotation, rotate, undo_rotation
from pykubelet.runtime.types import (
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageFsUsage,
    ImageInfo,
    RegistryAuth,
    RuntimeFeatures,
    RuntimeHealth,
    RuntimeVersion,
    SandboxConfig,
    SandboxStatus,
    StreamIO,
)

__all__ = ["CriRuntime"]

log = logging.getLogger(__name__)

KUBELET_API_VERSION = "0.1.0"  # what the Go kubelet sends in VersionRequest


class CriRuntime:
    """Runtime, ImageService, RuntimeInfo, StreamingRuntime and RuntimeLifecycle over CRI."""

    def __init__(
        self,
        endpoint: str,
        *,
        clock: Clock | None = None,
        request_timeout_s: float = 120.0,
        container_log_max_size_bytes: int = 10 * 1024 * 1024,
        container_log_max_files: int = 5,
        log_rotate_interval_s: float = 10.0,
        localnet_guard: LocalnetGuard | None = None,
    ) -> None:
        if container_log_max_files < 2:
            # the current file and at least one rotated file, as upstream requires (>= 2)
            raise InvalidInput(
                "must be at least 2 with a CRI runtime", field="containerLogMaxFiles"
            )
        self.endpoint = endpoint
        self.features = RuntimeFeatures(seccomp=True)  # containerd applies RuntimeDefault
        self._log_max_size = container_log_max_size_bytes
        self._log_max_files = container_log_max_files
        self._log_interval_s = log_rotate_interval_s
        self._rotator: asyncio.Task[None] | None = None
        # containerd's portmap sets route_localnet for 127.0.0.1:<hostPort>: close what that
        # opens (CVE-2020-8558) before the first host port, as the Go kubelet's KUBE-FIREWALL
        self._guard = localnet_guard
        self._client = CriClient(endpoint, request_timeout_s=request_timeout_s)
        self._clock = clock or SystemClock()
        self._sandbox_of: dict[str, str] = {}  # container id -> sandbox id
        self._cgroup_of: dict[str, str] = {}  # sandbox id -> cgroup parent
        self._cgroups: CgroupLayout | None = None  # found at the first podPidsLimit
        # the last full status per container: an EXITED one is final, and a listed container
        # whose state has not changed since has the same status (saves a relist N RPCs)
        self._statuses: dict[str, ContainerStatus] = {}
        # the same for sandboxes: a listed sandbox whose state has not changed since its last
        # PodSandboxStatus has that status (its IP and namespaces do not change while it lives)
        self._sandbox_statuses: dict[str, SandboxStatus] = {}

    # ----- lifecycle -----

    async def start(self) -> None:
        """Check the endpoint speaks ``runtime.v1`` before any pod syncs (fails loudly)."""
        try:
            v = await self.version()
        except RuntimeFailure as e:
            raise RuntimeUnavailable(
                f"containerRuntimeEndpoint {self.endpoint}: {e} (is containerd running, with "
                "its CRI plugin enabled?)"
            ) from None
        if not v.runtime_name:
            raise RuntimeUnavailable(f"{self.endpoint} did not say which runtime it is")
        if self._log_max_size > 0 and self._rotator is None:
            self._rotator = asyncio.create_task(self._rotate_logs_forever(), name="cri-logs")

    async def aclose(self) -> None:
        if self._rotator is not None:
            self._rotator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rotator
            self._rotator = None
        await self._client.close()

    async def _rotate_logs_forever(self) -> None:
        while True:
            await asyncio.sleep(self._log_interval_s)
            try:
                await self.rotate_logs()
            except RuntimeFailure as e:
                log.warning("container log rotation: %s", e)

    async def rotate_logs(self) -> int:
        """One pass over the running containers; returns how many logs were rotated. A
        container whose log cannot be rotated is logged and skipped, as upstream does."""
        done = 0
        for c in await self.list_containers():
            if c.state is not ContainerState.RUNNING or not c.log_path:
                continue
            try:
                done += await self._rotate_log(c.id, c.log_path)
            except (RuntimeFailure, OSError) as e:
                log.warning("container %s: log rotation: %s", c.id[:12], e)
        return done

    async def _rotate_log(self, container_id: str, path: str) -> int:
        if not await asyncio.to_thread(os.path.exists, path):
            # removed under a running container: have the runtime make it again (upstream)
            await self._reopen_log(container_id)
        if not await asyncio.to_thread(needs_rotation, path, self._log_max_size):
            return 0
        now = self._clock.now()
        moved = await asyncio.to_thread(rotate, path, self._log_max_files, now)
        if moved is None:
            return 0
        try:
            await self._reopen_log(container_id)
        except RuntimeFailure:
            await asyncio.to_thread(undo_rotation, path, moved)
            raise
        return 1

    async def _reopen_log(self, container_id: str) -> None:
        await self._call(
            "ReopenContainerLog",
            pb.ReopenContainerLogRequest(container_id=container_id),
            not_found=ContainerNotFound,
        )

    async def health(self) -> RuntimeHealth:
        """CRI ``Status``: RuntimeReady and NetworkReady; a missing condition is not ready."""
        try:
            resp = await self._call("Status", pb.StatusRequest(verbose=False))
        except RuntimeFailure as e:
            return RuntimeHealth(
                runtime_ready=False, network_ready=False, reason="RuntimeDown", message=str(e)
            )
        conds = {c.type: c for c in resp.status.conditions}
        rt, net = conds.get("RuntimeReady"), conds.get("NetworkReady")
        bad = next((c for c in (rt, net) if c is not None and not c.status), None)
        return RuntimeHealth(
            runtime_ready=bool(rt and rt.status),
            network_ready=bool(net and net.status),
            reason=bad.reason if bad is not None else "",
            message=bad.message if bad is not None else "",
        )

    async def _call(self, name: str, request: object, **kw: Any) -> Any:
        """One RuntimeService RPC (messages are untyped to mypy: generated code)."""
        self._client.open()
        return await self._client.call(getattr(self._client.runtime, name), request, **kw)

    async def _image_call(self, name: str, request: object, **kw: Any) -> Any:
        self._client.open()
        return await self._client.call(getattr(self._client.images, name), request, **kw)

    # ----- sandboxes -----

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        if self._guard is not None and any(p.host_port for p in config.port_mappings):
            try:
                await self._guard.ensure()
            except NetworkError as e:
                raise RuntimeFailure(str(e)) from None
        if config.log_directory:
            # containerd writes no log at all unless the directory exists (§9.4)
            await asyncio.to_thread(Path(config.log_directory).mkdir, parents=True, exist_ok=True)
        if config.pids_limit and config.cgroup_parent:
            await self._limit_pod_pids(config.cgroup_parent, config.pids_limit)
        resp = await self._call(
            "RunPodSandbox",
            pb.RunPodSandboxRequest(config=convert.sandbox_config(config)),
            timeout_s=2 * self._client.timeout_s,
        )
        sid: str = resp.pod_sandbox_id
        if not sid:
            raise RuntimeFailure("RunPodSandbox returned no sandbox id")
        self._cgroup_of[sid] = config.cgroup_parent
        return sid

    async def _limit_pod_pids(self, cgroup_parent: str, limit: int) -> None:
        """``podPidsLimit`` as the Go kubelet's pod container manager sets it: ``pids.max`` on
        the pod's cgroup, made before containerd's runc puts the containers under it."""
        if self._cgroups is None:
            self._cgroups = await asyncio.to_thread(discover_cgroups)
        try:
            await asyncio.to_thread(self._cgroups.limit_pids, cgroup_parent, limit)
        except OSError as e:
            raise CreateContainerError(f"podPidsLimit: pod cgroup {cgroup_parent}: {e}") from None

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        await self._call(
            "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id), missing_ok=True
        )

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self._call(
            "RemovePodSandbox",
            pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id),
            missing_ok=True,
        )
        cgroup = self._cgroup_of.pop(sandbox_id, None)
        self._sandbox_statuses.pop(sandbox_id, None)
        for cid in [c for c, s in self._sandbox_of.items() if s == sandbox_id]:
            self._forget(cid)
        if self._cgroups is not None and cgroup and cgroup not in self._cgroup_of.values():
            # the pod cgroup this runtime made (runc removes only the containers'); a busy one
            # (another attempt of the pod still running) is left in place
            await asyncio.to_thread(self._cgroups.remove, cgroup)

    async def pod_sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        resp = await self._call(
            "PodSandboxStatus",
            pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id),
            not_found=SandboxNotFound,
        )
        status = convert.sandbox_status(resp.status)
        self._cgroup_of[sandbox_id] = status.cgroup_parent
        self._sandbox_statuses[sandbox_id] = status
        return status

    async def list_pod_sandboxes(
        self, label_selector: Mapping[str, str] | None = None
    ) -> Sequence[SandboxStatus]:
        flt = pb.PodSandboxFilter(label_selector=dict(label_selector or {}))
        resp = await self._call("ListPodSandbox", pb.ListPodSandboxRequest(filter=flt))
        items = list(resp.items)
        got = await asyncio.gather(*(self._listed_sandbox(item) for item in items))
        if not label_selector:  # forget what containerd no longer has
            listed = {item.id for item in items}
            for gone in [sid for sid in self._sandbox_statuses if sid not in listed]:
                del self._sandbox_statuses[gone]
        return [s for s in got if s is not None]

    async def _listed_sandbox(self, item: Any) -> SandboxStatus | None:
        known = self._sandbox_statuses.get(item.id)
        if known is not None and known.state is convert.sandbox_state(item.state):
            return known
        try:
            return await self.pod_sandbox_status(item.id)
        except SandboxNotFound:
            return None  # removed between the list and the status

    # ----- containers -----

    async def create_container(
        self, sandbox_id: str, config: ContainerConfig, sandbox_config: SandboxConfig
    ) -> str:
        if sandbox_config.log_directory and config.log_path:
            log_dir = Path(sandbox_config.log_directory, config.log_path).parent
            await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
        try:
            resp = await self._call(
                "CreateContainer",
                pb.CreateContainerRequest(
                    pod_sandbox_id=sandbox_id,
                    config=convert.container_config(config, sandbox_config),
                    sandbox_config=convert.sandbox_config(sandbox_config),
                ),
                not_found=SandboxNotFound,
                failure=CreateContainerError,
            )
        except SandboxNotFound as e:
            # containerd answers NotFound for a missing image too ("failed to resolve image")
            if "image" in str(e):
                raise ImageNotFound(str(e)) from None
            raise
        cid: str = resp.container_id
        self._sandbox_of[cid] = sandbox_id
        self._cgroup_of.setdefault(sandbox_id, sandbox_config.cgroup_parent)
        return cid

    async def start_container(self, container_id: str) -> None:
        await self._call(
            "StartContainer",
            pb.StartContainerRequest(container_id=container_id),
            not_found=ContainerNotFound,
        )

    async def stop_container(self, container_id: str, timeout_s: float) -> None:
        grace = max(0, math.ceil(timeout_s))
        await self._call(
            "StopContainer",
            pb.StopContainerRequest(container_id=container_id, timeout=grace),
            timeout_s=self._client.timeout_s + grace,
            missing_ok=True,
        )

    async def remove_container(self, container_id: str) -> None:
        await self._call(
            "RemoveContainer",
            pb.RemoveContainerRequest(container_id=container_id),
            missing_ok=True,
        )
        self._forget(container_id)

    def _forget(self, container_id: str) -> None:
        self._sandbox_of.pop(container_id, None)
        self._statuses.pop(container_id, None)

    async def container_status(self, container_id: str) -> ContainerStatus:
        done = self._statuses.get(container_id)
        if done is not None and done.state is ContainerState.EXITED:
            return done
        sandbox_id = self._sandbox_of.get(container_id)
        if sandbox_id is None:
            resp = await self._call(
                "ListContainers",
                pb.ListContainersRequest(filter=pb.ContainerFilter(id=container_id)),
            )
            items = list(resp.containers)
            if not items:
                raise ContainerNotFound(f"container {container_id!r} not found")
            sandbox_id = items[0].pod_sandbox_id
            self._sandbox_of[container_id] = sandbox_id
        return await self._status(container_id, sandbox_id)

    async def _status(self, container_id: str, sandbox_id: str) -> ContainerStatus:
        resp = await self._call(
            "ContainerStatus",
            pb.ContainerStatusRequest(container_id=container_id),
            not_found=ContainerNotFound,
        )
        cgroup = self._cgroup_of.get(sandbox_id)
        if cgroup is None:
            cgroup = (await self.pod_sandbox_status(sandbox_id)).cgroup_parent
        status = convert.container_status(resp.status, sandbox_id, cgroup)
        self._statuses[container_id] = status
        return status

    async def list_containers(self, sandbox_id: str | None = None) -> Sequence[ContainerStatus]:
        flt = pb.ContainerFilter(pod_sandbox_id=sandbox_id or "")
        resp = await self._call("ListContainers", pb.ListContainersRequest(filter=flt))
        items = list(resp.containers)
        for c in items:
            self._sandbox_of[c.id] = c.pod_sandbox_id
        got = await asyncio.gather(*(self._listed(c) for c in items))
        if sandbox_id is None:  # forget what containerd no longer has
            listed = {c.id for c in items}
            for gone in [cid for cid in self._statuses if cid not in listed]:
                self._forget(gone)
        return [s for s in got if s is not None]

    async def _listed(self, item: Any) -> ContainerStatus | None:
        known = self._statuses.get(item.id)
        if known is not None and convert.container_state(item.state) is known.state:
            return known
        return await self._status_or_none(item.id, item.pod_sandbox_id)

    async def _status_or_none(self, container_id: str, sandbox_id: str) -> ContainerStatus | None:
        try:
            return await self._status(container_id, sandbox_id)
        except (ContainerNotFound, SandboxNotFound):
            return None

    async def exec_sync(
        self, container_id: str, cmd: Sequence[str], timeout_s: float | None = None
    ) -> ExecResult:
        timeout = math.ceil(timeout_s) if timeout_s else 0
        try:
            resp = await self._call(
                "ExecSync",
                pb.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=timeout),
                timeout_s=self._client.timeout_s + timeout if timeout else None,
                not_found=ContainerNotFound,
            )
        except RuntimeFailure as e:
            if timeout and "timeout" in str(e).lower() and "exceeded" in str(e).lower():
                raise ExecTimeout(f"command timed out after {timeout_s} s") from None
            raise
        return ExecResult(
            exit_code=resp.exit_code,
            stdout=resp.stdout,
            stderr=resp.stderr,
        )

    # ----- images -----

    async def image_status(self, ref: str) -> ImageInfo | None:
        resp = await self._image_call(
            "ImageStatus", pb.ImageStatusRequest(image=pb.ImageSpec(image=ref))
        )
        image = resp.image
        if not resp.HasField("image") or not image.id:
            return None
        return convert.image_info(image)

    async def pull_image(self, ref: str, auth: RegistryAuth | None = None) -> str:
        request = pb.PullImageRequest(image=pb.ImageSpec(image=ref))
        if auth is not None:
            request.auth.CopyFrom(
                pb.AuthConfig(
                    username=auth.username,
                    password=auth.password,
                    auth=auth.auth,
                    identity_token=auth.identity_token,
                    server_address=_server_url(auth.server),
                )
            )
        resp = await self._image_call(
            "PullImage",
            request,
            timeout_s=None,  # the Go kubelet sets no deadline on pulls
            not_found=ImageNotFound,
            failure=ImagePullError,
        )
        info = await self.image_status(resp.image_ref or ref)
        if info is None:
            raise ImagePullError(f"image {ref!r} is not present after the pull")
        return info.id

    async def image_fs_usage(self) -> ImageFsUsage:
        """CRI ``ImageFsInfo`` gives the mount point and the images' bytes; the capacity is
        the filesystem's, read here as cadvisor does for the Go kubelet."""
        resp = await self._image_call("ImageFsInfo", pb.ImageFsInfoRequest())
        used = sum(fs.used_bytes.value for fs in resp.image_filesystems)
        mount = next((fs.fs_id.mountpoint for fs in resp.image_filesystems), "")
        st = await asyncio.to_thread(os.statvfs, mount or "/")
        return ImageFsUsage(
            capacity_bytes=st.f_blocks * st.f_frsize,
            available_bytes=st.f_bavail * st.f_frsize,
            images_bytes=used,
        )

    async def list_images(self) -> Sequence[ImageInfo]:
        resp = await self._image_call("ListImages", pb.ListImagesRequest())
        return [convert.image_info(i) for i in resp.images]

    async def remove_image(self, ref: str) -> None:
        await self._image_call(
            "RemoveImage", pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)), missing_ok=True
        )

    async def import_image(self, path: Path, *, ref: str | None = None) -> ImageInfo:
        """CRI has no import call: containerd's own client ``ctr`` loads the tarball into the
        ``k8s.io`` namespace that the CRI plugin serves (and tags it ``ref`` when given)."""
        out = await self._ctr("images", "import", str(path))
        names = [
            line.split()[1]
            for line in out.splitlines()
            if line.startswith("unpacking ") and len(line.split()) > 1
        ]
        if ref and names:
            await self._ctr("images", "tag", "--force", names[0], ref)
        info = await self.image_status(ref or (names[0] if names else ""))
        if info is None:
            raise ImageNotFound(f"{path}: imported, but no image name was found in it")
        return info

    async def _ctr(self, *args: str) -> str:
        socket = self._client.target[len("unix://") :]
        proc = await asyncio.create_subprocess_exec(
            "ctr",
            "--address",
            socket,
            "--namespace",
            "k8s.io",
            *args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise ImagePullError(f"ctr {' '.join(args)}: {text.strip()}")
        return text

    # ----- info and stats -----

    async def version(self) -> RuntimeVersion:
        resp = await self._call("Version", pb.VersionRequest(version=KUBELET_API_VERSION))
        return RuntimeVersion(
            runtime_name=resp.runtime_name,
            runtime_version=resp.runtime_version,
            runtime_api_version=resp.runtime_api_version,
        )

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        resp = await self._call(
            "ContainerStats",
            pb.ContainerStatsRequest(container_id=container_id),
            missing_ok=True,
        )
        if resp is None or not resp.HasField("stats"):
            return None
        return convert.container_stats(resp.stats, self._clock.now())

    async def list_container_stats(self) -> Sequence[ContainerStats]:
        """Every container's sample in one call (CRI ``ListContainerStats``)."""
        req = pb.ListContainerStatsRequest()
        resp = await self._call("ListContainerStats", req, timeout_s=None)
        now = self._clock.now()
        return [convert.container_stats(s, now) for s in resp.stats]

    # ----- streaming -----

    async def exec(self, container_id: str, cmd: Sequence[str], io: StreamIO) -> int:
        resp = await self._call(
            "Exec",
            pb.ExecRequest(
                container_id=container_id,
                cmd=list(cmd),
                tty=io.tty,
                stdin=io.stdin is not None,
                stdout=io.stdout is not None,
                stderr=io.stderr is not None and not io.tty,
            ),
            not_found=ContainerNotFound,
        )
        return await run_exec(resp.url, io)

    async def attach(self, container_id: str, io: StreamIO) -> None:
        resp = await self._call(
            "Attach",
            pb.AttachRequest(
                container_id=container_id,
                tty=io.tty,
                stdin=io.stdin is not None,
                stdout=io.stdout is not None,
                stderr=io.stderr is not None and not io.tty,
            ),
            not_found=ContainerNotFound,
        )
        await run_attach(resp.url, io)

    async def port_forward(self, sandbox_id: str, port: int) -> CriPortConnection:
        resp = await self._call(
            "PortForward",
            pb.PortForwardRequest(pod_sandbox_id=sandbox_id, port=[port]),
            not_found=SandboxNotFound,
        )
        return await CriPortConnection.open(resp.url, port)


def _server_url(server: str) -> str:
    """containerd parses ``AuthConfig.server_address`` as a URL and uses the credentials only
    when its host is the pull's registry; a docker config key (``127.0.0.1:5000``) is not a
    URL, so it gets a scheme."""
    if not server or "://" in server:
        return server
    return f"https://{server}"

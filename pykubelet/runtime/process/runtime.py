"""``ProcessRuntime``: the embedded runtime. Pods are holder processes owning namespaces;
containers are processes supervised by a native shim each, so they outlive the agent.

Every fact lives on disk (``records.py``); a new ``ProcessRuntime`` on the same root adopts
whatever the previous agent left running. The write-once records are indexed in memory
(``index.py``) and statuses are re-read only when the shim's state file or liveness changed
(``status.StatusCache``), so listing is cheap enough to be done every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

from pykubelet.core.clock import Clock, SystemClock
from pykubelet.registry import RegistryClient, normalize_ref, parse_ref
from pykubelet.runtime.cgroups import CgroupLayout, discover_cgroups
from pykubelet.runtime.errors import (
    ContainerNotFound,
    ContainerNotRunning,
    CreateContainerError,
    ImagePullError,
    SandboxNotFound,
)
from pykubelet.runtime.pod_network import PodNetwork
from pykubelet.runtime.process import halfmade, procs
from pykubelet.runtime.process.create import CreateContext, prepare_container
from pykubelet.runtime.process.etcfiles import write_sandbox_files
from pykubelet.runtime.process.execs import ExecMixin
from pykubelet.runtime.process.features import (
    RuntimeCapabilities,
    detect_capabilities,
    detect_host_ip,
)
from pykubelet.runtime.process.helper_args import pause_args, run_args
from pykubelet.runtime.process.images import ImageStore
from pykubelet.runtime.process.index import RecordIndex
from pykubelet.runtime.process.layout import RuntimeLayout
from pykubelet.runtime.process.logtidy import RotatedLogs
from pykubelet.runtime.process.pools import run_io
from pykubelet.runtime.process.pull import pull_from_registry
from pykubelet.runtime.process.records import (
    ContainerRecord,
    SandboxRecord,
    atomic_write_json,
    read_json,
)
from pykubelet.runtime.process.refs import HOST_IMAGE
from pykubelet.runtime.process.shimbin import helper_command, launch
from pykubelet.runtime.process.status import StatusCache, finalize, identities
from pykubelet.runtime.process.zygote import Zygote
from pykubelet.runtime.types import (
    ContainerConfig,
    ContainerStats,
    ContainerStatus,
    ImageFsUsage,
    ImageInfo,
    NamespaceMode,
    RegistryAuth,
    RuntimeHealth,
    RuntimeVersion,
    SandboxConfig,
    SandboxState,
    SandboxStatus,
    labels_match,
)

__all__ = ["ProcessRuntime"]

log = logging.getLogger(__name__)

_Ident = procs.ProcessIdentity | None


class ProcessRuntime(ExecMixin):
    """Implements ``Runtime``, ``ImageService``, ``StreamingRuntime`` and ``RuntimeInfo``."""

    def __init__(
        self,
        root_dir: Path,
        *,
        cgroup_root: str = "pykubelet",
        clock: Clock | None = None,
        network: PodNetwork | None = None,
        container_log_max_size_bytes: int = 10 * 1024 * 1024,
        container_log_max_files: int = 5,
        log_rotate_interval_s: float = 10.0,
        node_ip: str = "",
        helper: str = "auto",
        registry_ca_file: str = "",
    ) -> None:
        if helper not in ("auto", "native", "python"):
            raise CreateContainerError(f"helper: {helper!r} is not auto, native or python")
        if container_log_max_files < 1:
            raise CreateContainerError("container_log_max_files: must be at least 1")
        self.layout = RuntimeLayout(root=Path(root_dir))
        self._cgroup_root = cgroup_root.strip("/")
        self._clock = clock or SystemClock()
        self._network = network
        self._log_max_size = container_log_max_size_bytes
        self._log_max_files = container_log_max_files
        # the shim renames; this gzips older rotations behind it, as upstream's log manager
        self._rotated_logs = RotatedLogs(
            lambda: [rec.log_path for rec in self._containers.all() if rec.log_path],
            max_files=container_log_max_files,
            clock=self._clock,
            interval_s=log_rotate_interval_s,
        )
        self._log_tidier: asyncio.Task[None] | None = None
        self._node_ip: str | None = node_ip or None
        self.images = ImageStore(self.layout.images)
        self._registry_ca_file = registry_ca_file  # trusted for registries besides the system's
        self._helper_kind = helper
        self._helper_argv: list[str] | None = None
        self._zygote: Zygote | None = None  # launches the native helper without an exec each
        self._cgroups: CgroupLayout | None = None
        self._caps: RuntimeCapabilities | None = None
        # one lock per pod uid / container id: starts of different pods run concurrently
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._sandbox_root = str(self.layout.state / "sandboxes")
        self._sandboxes = RecordIndex(
            self.layout.state / "sandboxes", "sandbox.json", SandboxRecord.from_json
        )
        self._containers = RecordIndex(
            self.layout.state / "containers", "container.json", ContainerRecord.from_json
        )
        self._live = procs.Liveness()  # holders and shims, asked about on every listing
        self._statuses = StatusCache(lambda: self.cgroups, self._live)
        self._ips: dict[str, list[str]] = {}  # sandbox id -> its IPs, once known
        self._stopped: set[str] = set()  # sandboxes known to be stopped
        self._making: set[str] = set()  # sandboxes this runtime is making now
        self._made: set[str] = set()  # sandboxes known to have been made completely

    # ------------------------------------------------------------------ set-up

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    @property
    def cgroups(self) -> CgroupLayout:
        if self._cgroups is None:
            self._cgroups = discover_cgroups()
        return self._cgroups

    @property
    def capabilities(self) -> RuntimeCapabilities:
        """What this host lets the runtime enforce (the agent logs ``warnings()`` at start)."""
        if self._caps is None:
            self._caps = detect_capabilities(self.cgroups)
        return self._caps

    async def _helper(self) -> list[str]:
        """argv prefix of the helper (``pkshim`` binary, or the Python fallback)."""
        if self._helper_argv is None:
            argv = await run_io(helper_command, self.layout.bin, self._helper_kind)
            if len(argv) == 1:  # the compiled pkshim (the Python helper has no zygote)
                self._zygote = Zygote(argv[0])
            self._helper_argv = argv
        return list(self._helper_argv)

    async def _launch(self, argv: list[str], env: dict[str, str] | None = None) -> list[int]:
        if self._zygote is not None:
            return await self._zygote.launch(argv, env)
        return await launch(argv, env=env)

    # RuntimeLifecycle: nothing to connect to; the network, when there is one, is ours

    async def start(self) -> None:
        """Clear away what an agent killed in the middle of making a sandbox or container
        left half made (``halfmade``); nothing is being made yet."""
        cgroups = self.cgroups
        for kind, record in (("sandboxes", "sandbox.json"), ("containers", "container.json")):
            await run_io(halfmade.sweep, self.layout.state / kind, record, cgroups)
        if self._log_max_size > 0 and self._log_tidier is None:
            self._log_tidier = asyncio.create_task(self._rotated_logs.run(), name="process-logs")

    async def aclose(self) -> None:
        tidier, self._log_tidier = self._log_tidier, None
        self.close()
        if tidier is not None:
            tidier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tidier

    async def rotate_logs(self) -> int:
        """One pass gzipping the rotations the shims made (all but each log's newest) and
        enforcing ``container_log_max_files``; returns how many files were gzipped."""
        return await self._rotated_logs.tidy()

    async def health(self) -> RuntimeHealth:
        return RuntimeHealth(runtime_ready=True, network_ready=True)

    def close(self) -> None:
        """Stop the helper zygote (pods and containers keep running; a later launch starts a
        new one). Also done when the runtime is garbage-collected or the agent exits."""
        if self._zygote is not None:
            self._zygote.close()

    # ------------------------------------------------------------------ sandboxes

    def _sandbox(self, sandbox_id: str) -> SandboxRecord:
        rec = self._sandboxes.get(sandbox_id)
        if rec is None:
            raise SandboxNotFound(f"sandbox {sandbox_id!r} not found")
        return rec

    def _sandbox_ready(self, rec: SandboxRecord) -> bool:
        if rec.id in self._stopped:
            return False
        if os.path.exists(os.path.join(self._sandbox_root, rec.id, "stopped")):
            self._stopped.add(rec.id)
            return False
        if rec.id not in self._made and rec.id not in self._making:
            if halfmade.is_marked(self.layout.sandbox_dir(rec.id)):
                return False  # an agent died while making it: never finished (halfmade)
            self._made.add(rec.id)
        return self._live.alive((rec.holder_pid, rec.holder_start))

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        if not config.uid or not config.name:
            raise CreateContainerError("sandbox: name and uid are required")
        async with self._lock("pod:" + config.uid):
            for rec in self._sandboxes.all():
                same = (rec.config.uid, rec.config.attempt) == (config.uid, config.attempt)
                if same and self._sandbox_ready(rec):
                    return rec.id  # never a second holder for the same pod attempt
            return await self._create_sandbox(config)

    async def _create_sandbox(self, config: SandboxConfig) -> str:
        sid = secrets.token_hex(32)
        self._making.add(sid)
        try:
            return await self._make_sandbox(config, sid)
        finally:
            self._making.discard(sid)

    async def _make_sandbox(self, config: SandboxConfig, sid: str) -> str:
        helper = await self._helper()
        d = self.layout.sandbox_dir(sid)
        ns = self.capabilities.namespaces
        cgroup_parent = config.cgroup_parent or f"{self._cgroup_root}/pod{config.uid}"
        holder_cgroup = f"{cgroup_parent}/sandbox-{sid[:12]}"
        usable = self.cgroups.usable
        if config.pids_limit and not usable:
            raise CreateContainerError("podPidsLimit: no writable cgroups on this host")
        try:
            await run_io(
                self._prepare_sandbox_dirs, d, holder_cgroup if usable else "", config.pids_limit
            )
        except OSError as e:
            raise CreateContainerError(f"pod cgroup {cgroup_parent}: {e}") from None
        # As the pause container does: the holder lives in the pod's cgroup (a leaf of its
        # own, since cgroup v2 allows no processes beside child cgroups), so whatever cleans
        # up a pod by cgroup also finds it. It joins before it reports ready.
        procs_files = self.cgroups.procs_files(holder_cgroup) if usable else []
        argv = helper + pause_args(config, namespaces=ns, cgroup_procs=procs_files)
        (holder,) = (await self._launch(argv))[:1]
        ident = procs.identity(holder)
        rec = SandboxRecord(
            id=sid,
            config=config,
            created_at=self._clock.now(),
            holder_pid=holder,
            holder_start=ident[1] if ident else 0,
            namespaces=ns,
            cgroup_parent=cgroup_parent if usable else "",
        )
        await run_io(atomic_write_json, d / "sandbox.json", rec.to_json())
        self._sandboxes.add(rec)
        ips = await self._setup_network(rec)
        self._ips[sid] = list(ips)
        await run_io(self._finish_sandbox_dirs, d, config, ips)
        self._made.add(sid)
        log.info(
            "sandbox %s for %s/%s (%s) ready", sid[:12], config.namespace, config.name, config.uid
        )
        return sid

    def _prepare_sandbox_dirs(self, sandbox_dir: Path, holder_cgroup: str, pids_limit: int) -> None:
        """The sandbox's directory and (when cgroups are usable) the holder's cgroup leaf with
        its pod cgroup, whose ``pids.max`` is ``podPidsLimit``: one worker-thread job."""
        sandbox_dir.mkdir(parents=True)
        halfmade.mark(sandbox_dir, holder_cgroup)  # before any cgroup: a kill leaks nothing
        if holder_cgroup and pids_limit:
            self.cgroups.limit_pids(str(Path(holder_cgroup).parent), pids_limit)
        if holder_cgroup:
            self.cgroups.create(holder_cgroup)

    @staticmethod
    def _finish_sandbox_dirs(sandbox_dir: Path, config: SandboxConfig, ips: list[str]) -> None:
        write_sandbox_files(sandbox_dir, config, ips)
        halfmade.unmark(sandbox_dir)

    def _netns_path(self, rec: SandboxRecord) -> str:
        if not rec.namespaces or rec.config.network == NamespaceMode.NODE:
            return ""
        return f"/proc/{rec.holder_pid}/ns/net"

    async def _setup_network(self, rec: SandboxRecord) -> list[str]:
        netns = self._netns_path(rec)
        if not netns or self._network is None:
            return []
        try:
            return await self._network.setup(rec.id, netns, rec.config)
        except BaseException:
            await self._stop_holder(rec)
            raise

    async def _stop_holder(self, rec: SandboxRecord) -> None:
        ident = (rec.holder_pid, rec.holder_start)
        procs.signal_process(ident, procs.SIGTERM)
        if not await procs.wait_exit(ident, 2.0):
            procs.signal_process(ident, procs.SIGKILL)
            await procs.wait_exit(ident, 5.0)

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        try:
            rec = self._sandbox(sandbox_id)
        except SandboxNotFound:
            return
        for c in await self.list_containers(sandbox_id):
            await self.stop_container(c.id, 0)
        d = self.layout.sandbox_dir(sandbox_id)
        if self._network is not None and not (d / "network-released").exists():
            netns = self._netns_path(rec)
            if netns:
                await self._network.teardown(sandbox_id, netns if self._sandbox_ready(rec) else "")
            (d / "network-released").touch()
        await self._stop_holder(rec)
        (d / "stopped").touch()
        self._stopped.add(sandbox_id)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        try:
            rec = self._sandbox(sandbox_id)
        except SandboxNotFound:
            return
        await self.stop_pod_sandbox(sandbox_id)
        for c in await self.list_containers(sandbox_id):
            await self.remove_container(c.id)
        if rec.cgroup_parent:
            others = [
                r
                for r in self._sandboxes.all()
                if r.id != sandbox_id and r.cgroup_parent == rec.cgroup_parent
            ]
            if not others:
                await run_io(self.cgroups.remove, rec.cgroup_parent)
        await run_io(shutil.rmtree, self.layout.sandbox_dir(sandbox_id), True)
        self._sandboxes.drop(sandbox_id)
        self._ips.pop(sandbox_id, None)
        self._stopped.discard(sandbox_id)
        self._made.discard(sandbox_id)
        self._live.forget((rec.holder_pid, rec.holder_start))

    async def pod_sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        return self._sandbox_status(self._sandbox(sandbox_id))

    def _sandbox_status(self, rec: SandboxRecord) -> SandboxStatus:
        c = rec.config
        if c.network == NamespaceMode.NODE or not rec.namespaces:
            host_ip = self._host_ip()
            ips = [host_ip] if host_ip else []
        else:
            ips = self._pod_ips(rec.id)
        ready = self._sandbox_ready(rec)
        return SandboxStatus(
            id=rec.id,
            name=c.name,
            namespace=c.namespace,
            uid=c.uid,
            attempt=c.attempt,
            state=SandboxState.READY if ready else SandboxState.NOTREADY,
            created_at=rec.created_at,
            ip=ips[0] if ips else "",
            additional_ips=tuple(ips[1:]),
            netns_path=self._netns_path(rec) if ready else "",
            network=c.network,
            cgroup_parent=rec.cgroup_parent,
            labels=c.labels,
            annotations=c.annotations,
        )

    def _pod_ips(self, sandbox_id: str) -> list[str]:
        ips = self._ips.get(sandbox_id)
        if ips is None:
            ips = []
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, ValueError):
                ips = self._ips[sandbox_id] = list(
                    read_json(self.layout.sandbox_dir(sandbox_id) / "ips.json")
                )
        return ips

    def _host_ip(self) -> str:
        if self._node_ip is None:
            self._node_ip = detect_host_ip()  # once: a short subprocess, cached even if ""
        return self._node_ip

    async def list_pod_sandboxes(
        self, label_selector: Mapping[str, str] | None = None
    ) -> Sequence[SandboxStatus]:
        return [
            self._sandbox_status(rec)
            for rec in self._sandboxes.all()
            if not label_selector or labels_match(rec.config.labels, label_selector)
        ]

    # ------------------------------------------------------------------ containers

    def _container(self, container_id: str) -> ContainerRecord:
        rec = self._containers.get(container_id)
        if rec is None:
            raise ContainerNotFound(f"container {container_id!r} not found")
        return rec

    async def create_container(
        self, sandbox_id: str, config: ContainerConfig, sandbox_config: SandboxConfig
    ) -> str:
        sandbox = self._sandbox(sandbox_id)
        if not self._sandbox_ready(sandbox):
            raise CreateContainerError(f"sandbox {sandbox_id[:12]} is not ready")
        image = await self._image_for(config.image)
        cid = secrets.token_hex(32)
        rec = await run_io(
            prepare_container,
            CreateContext(
                capabilities=self.capabilities,
                layout=self.layout,
                cgroups=self.cgroups,
                created_at=self._clock.now(),
            ),
            cid,
            sandbox,
            config,
            sandbox_config,
            image,
        )
        self._containers.add(rec)
        log.info("container %s (%s) created in sandbox %s", cid[:12], config.name, sandbox_id[:12])
        return rec.id

    async def _image_for(self, ref: str) -> ImageInfo:
        if not ref:
            raise CreateContainerError("container image: required")
        if self.images.fresh():
            return self.images.require(ref)
        return await run_io(self.images.require, ref)

    async def start_container(self, container_id: str) -> None:
        rec = self._container(container_id)
        d = self.layout.container_dir(container_id)
        async with self._lock("container:" + container_id):
            if (d / "started.json").exists() or (d / "shim" / "state").exists():
                raise ContainerNotRunning(f"container {container_id[:12]} was already started")
            sandbox = self._sandbox(rec.sandbox_id)
            if not self._sandbox_ready(sandbox):
                raise CreateContainerError(f"sandbox {rec.sandbox_id[:12]} is not ready")
            helper = await self._helper()
            argv = helper + run_args(
                rec,
                sandbox,
                d,
                log_max_size=self._log_max_size,
                log_max_files=self._log_max_files,
                init=None if self._zygote is not None else helper,  # zygote: init without exec
            )
            # the shim records both identities (pid + start time) in its state before it
            # reports, so an agent killed right here still adopts the container
            _shim_pid, pid = await self._launch(argv, env=dict(rec.env))
            # return once init has exec'd the container's command, so exec and status see it
            # (with the zygote the report already comes after the exec: one read)
            await procs.wait_exec(pid, str(d / "spec").encode(), 10.0)

    def _identities(self, d: Path) -> tuple[_Ident, _Ident]:
        return identities(d)

    async def stop_container(self, container_id: str, timeout_s: float) -> None:
        try:
            rec = self._container(container_id)
        except ContainerNotFound:
            return
        d = self.layout.container_dir(container_id)
        shim, pid = self._identities(d)
        # wait on the shim (it records the exit); if it was killed, on the orphaned container
        watched = shim if procs.alive(shim) else pid
        if not procs.alive(watched):
            return
        group = not rec.namespaces  # without a PID namespace, signal the whole process group
        if timeout_s > 0 and procs.signal_process(pid, procs.SIGTERM, group=group):
            if await procs.wait_exit(watched, timeout_s):
                return
        procs.signal_process(pid, procs.SIGKILL, group=group)
        if rec.cgroup_path:
            await run_io(self.cgroups.kill_all, rec.cgroup_path)
        await procs.wait_exit(watched, 10.0)

    async def remove_container(self, container_id: str) -> None:
        try:
            rec = self._container(container_id)
        except ContainerNotFound:
            return
        await self.stop_container(container_id, 0)
        finalize(self.layout.container_dir(rec.id), self.cgroups, rec)
        if rec.cgroup_path:
            await run_io(self.cgroups.kill_all, rec.cgroup_path)
            await run_io(self.cgroups.remove, rec.cgroup_path)
        await run_io(shutil.rmtree, self.layout.container_dir(container_id), True)
        self._containers.drop(container_id)
        self._statuses.forget(container_id)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._status(self._container(container_id))

    def _status(self, rec: ContainerRecord) -> ContainerStatus:
        return self._statuses.status(self.layout.container_dir(rec.id), rec)

    async def list_containers(self, sandbox_id: str | None = None) -> Sequence[ContainerStatus]:
        return [
            self._status(rec)
            for rec in self._containers.all()
            if sandbox_id is None or rec.sandbox_id == sandbox_id
        ]

    def log_loss_files(self) -> list[tuple[ContainerStatus, Path]]:
        """Each container with the shim's count of log records it could not write
        (``logloss.LogLossWatch`` reads them)."""
        return [
            (self._status(rec), self.layout.shim_dir(rec.id) / "logloss")
            for rec in self._containers.all()
        ]

    # ------------------------------------------------------------------ images

    async def image_status(self, ref: str) -> ImageInfo | None:
        if self.images.fresh():
            return self.images.get(ref)
        return await run_io(self.images.get, ref)

    async def pull_image(self, ref: str, auth: RegistryAuth | None = None) -> str:
        """Pull from the registry. A reference that was imported (``pykubelet images import``)
        and never pulled is answered from the store: air-gapped nodes keep working with
        ``imagePullPolicy: Always`` (a deliberate difference from containerd)."""
        if ref == HOST_IMAGE:
            return HOST_IMAGE
        async with self._lock("pull:" + normalize_ref(ref)):  # one pull per image at a time
            local = await self.image_status(ref)  # from memory when the index is unchanged
            if local is not None and local.id != HOST_IMAGE:
                name = parse_ref(ref).name
                if not any(d.split("@")[0] == name for d in local.repo_digests):
                    return local.id
            try:
                async with RegistryClient(ca_file=self._registry_ca_file) as client:
                    info = await pull_from_registry(
                        self.images, client, ref, auth, self.layout.images
                    )
            except OSError as e:  # a full disk, a read-only root: the pull failed, not the agent
                raise ImagePullError(f"{ref}: storing the image: {e}") from e
            return info.id

    async def list_images(self) -> Sequence[ImageInfo]:
        return await run_io(self.images.list_images)

    async def remove_image(self, ref: str) -> None:
        await run_io(self.images.remove, ref)

    async def image_fs_usage(self) -> ImageFsUsage:
        return await run_io(self.images.fs_usage)

    async def import_image(self, path: Path, *, ref: str | None = None) -> ImageInfo:
        return await run_io(self.images.import_archive, path, ref=ref)

    # ------------------------------------------------------------------ info

    async def version(self) -> RuntimeVersion:
        from pykubelet import __version__

        return RuntimeVersion(runtime_name="pykubelet-process", runtime_version=__version__)

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        return None  # the stats package reads cgroups (ContainerStatus.cgroup_path)

    def log_path(self, container_id: str) -> str:
        return self._container(container_id).log_path

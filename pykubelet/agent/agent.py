"""The composition root: ``Agent(config)`` builds the runtime, the pod layer and the servers.

All wiring lives here, in the ``_build_*`` functions, so adding a part (stats collectors, node
mode) is one more function and one more task. Construction does no I/O; ``run()`` starts
everything, sets ``ready``, and on ``stop()`` (or cancellation) stops syncing and serving while
leaving containers running for the next agent, then sets ``done``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pykubelet.config import KubeletConfiguration, configz
from pykubelet.core.clock import Clock, SystemClock
from pykubelet.core.errors import PykubeletError
from pykubelet.host.nodeip import choose_node_ip
from pykubelet.network import (
    DEFAULT_BRIDGE,
    DEFAULT_SUBNET,
    AgentNetwork,
    BridgeNetwork,
    CniNetwork,
    load_conf_dir,
)
from pykubelet.network.localnet import LocalnetGuard
from pykubelet.pods import (
    Backoff,
    DockerConfigFiles,
    ImageGC,
    PodManager,
    PullCredentials,
    RuntimeConfigBuilder,
    StaticDirSource,
    StatusManager,
    WorkerCounters,
    WorkerDeps,
    pull_gate,
)
from pykubelet.pods.cache import ContainerCache
from pykubelet.podspec import NodeAllocatable, PodSpecFeatures
from pykubelet.runtime.health import RuntimeHealthWatch
from pykubelet.runtime.protocol import (
    ImageService,
    Runtime,
    RuntimeInfo,
    RuntimeLifecycle,
    StreamingRuntime,
)
from pykubelet.stats.agent_metrics import default_metrics

if TYPE_CHECKING:
    from pykubelet.node import NodeMode
    from pykubelet.node.cert_rotation import CertificateRotator
    from pykubelet.security.setup import SecurityParts
    from pykubelet.server import KubeletServers

__all__ = ["Agent", "NodeRuntime", "build_network", "build_runtime", "describe_host"]

log = logging.getLogger(__name__)

KUBELET_API_VERSION = "v1.20.2"  # the kubelet release whose node behaviour we follow


class NodeRuntime(Runtime, ImageService, RuntimeInfo, StreamingRuntime, RuntimeLifecycle, Protocol):
    """What the agent needs of a runtime: every implementation provides all of these."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Service:
    """A long-lived part the agent runs: its ``run()`` and how to stop it."""

    name: str
    run: Callable[[], Coroutine[Any, Any, None]]


def build_runtime(
    config: KubeletConfiguration,
    clock: Clock,
    *,
    network: AgentNetwork | None = None,
    node_ip: str | None = None,
) -> NodeRuntime:
    if config.runtime == "fake":
        from pykubelet.runtime.fake import FakeRuntime

        rt: NodeRuntime = FakeRuntime(clock)
        return rt
    if config.runtime == "cri":
        from pykubelet.runtime.cri import CriRuntime

        return CriRuntime(
            config.container_runtime_endpoint,
            clock=clock,
            container_log_max_size_bytes=config.container_log_max_size_bytes,
            container_log_max_files=config.container_log_max_files,
            localnet_guard=LocalnetGuard() if os.geteuid() == 0 else None,
        )
    from pykubelet.runtime.process import ProcessRuntime

    return ProcessRuntime(
        Path(config.root_dir),
        cgroup_root=config.cgroup_root or "pykubelet",
        clock=clock,
        network=network,
        container_log_max_size_bytes=config.container_log_max_size_bytes,
        container_log_max_files=config.container_log_max_files,
        node_ip=_host_ip(config) if node_ip is None else node_ip,
        registry_ca_file=config.image_registry_ca_file,
    )


def build_network(config: KubeletConfiguration) -> AgentNetwork | None:
    """The pod network, when the agent can make namespaces (root): CNI when the conf dir holds
    a network config (read once, here), else the built-in bridge network, made in-process with
    rtnetlink (no plugin execs: ~20 ms of CPU per pod less). Without root, pods share the host's
    network and the runtime says so at start-up."""
    if os.geteuid() != 0:
        return None
    if config.cni_conf_dir and load_conf_dir(config.cni_conf_dir) is not None:
        return CniNetwork(
            state_dir=str(Path(config.root_dir) / "cni"),
            conf_dir=config.cni_conf_dir,
            bin_dir=config.cni_bin_dir,
        )
    return BridgeNetwork(
        state_dir=str(Path(config.root_dir) / "network"),
        bridge=DEFAULT_BRIDGE,
        subnet=config.pod_cidr or DEFAULT_SUBNET,
        cni_bin_dir=config.cni_bin_dir,  # portmap, for pods with a host port
    )


def _allocatable(config: KubeletConfiguration) -> NodeAllocatable:
    """The node's capacity stands in for unset limits in resourceFieldRef (as upstream)."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        st = os.statvfs(config.root_dir)
        disk = st.f_blocks * st.f_frsize
    except OSError:
        disk = 0
    return NodeAllocatable(
        cpu_milli=(os.cpu_count() or 1) * 1000, memory_bytes=pages, ephemeral_storage_bytes=disk
    )


def describe_host() -> list[str]:
    """What this machine lets the agent enforce, for the start-up log."""
    lines = []
    root = os.geteuid() == 0
    lines.append(f"running as {'root' if root else f'uid {os.geteuid()} (not root)'}")
    mounts = Path("/proc/self/mountinfo")
    v1 = v2 = False
    with contextlib.suppress(OSError):
        for line in mounts.read_text().splitlines():
            fstype = line.split(" - ", 1)[-1].split(" ", 1)[0]
            v1 |= fstype == "cgroup"
            v2 |= fstype == "cgroup2"
    mode = "hybrid (v1 + v2)" if v1 and v2 else "v2" if v2 else "v1" if v1 else "none"
    lines.append(f"cgroups: {mode}")
    return lines


async def _connect_node_mode(config: KubeletConfiguration, clock: Clock) -> NodeMode:
    from pykubelet import __version__
    from pykubelet.node import NodeMode, NodeModeSettings
    from pykubelet.node.node_status import NodeSettings

    settings = NodeModeSettings(
        kubeconfig=config.kubeconfig,
        node=NodeSettings(
            name=config.node_name,
            hostname=config.node_name,
            node_ip=_node_ip(config),
            port=config.port,
            max_pods=config.max_pods,
            labels=config.node_labels,
            taints=config.register_with_taints,
            kubelet_version=f"{KUBELET_API_VERSION}+pykubelet.{__version__}",
            runtime_version=f"{_runtime_scheme(config)}://{__version__}",
        ),
        root_dir=config.root_dir,
        update_s=config.node_status_update_frequency_s,
        report_s=config.node_status_report_frequency_s,
        lease_duration_s=config.node_lease_duration_s,
        api_qps=config.kube_api_qps,
        api_burst=config.kube_api_burst,
        event_qps=config.event_record_qps,
        event_burst=config.event_burst,
        register=config.register_node,
        sync_frequency_s=config.sync_frequency_s,
        change_detection=config.config_map_and_secret_change_detection_strategy,
        max_images=config.node_status_max_images,
    )
    return await NodeMode.create(settings, clock)


def _node_ip(config: KubeletConfiguration) -> str:
    """Node mode: the InternalIP is --node-ip or detected, never the serving --address."""
    return choose_node_ip(config.node_ip)


def _host_ip(config: KubeletConfiguration) -> str:
    """--node-ip (checked to be this host's), else a specific --address, else detected."""
    if not config.node_ip and config.address not in ("0.0.0.0", "::", ""):
        return config.address
    return choose_node_ip(config.node_ip)


class Agent:
    def __init__(
        self,
        config: KubeletConfiguration,
        *,
        clock: Clock | None = None,
        runtime: NodeRuntime | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.ready = asyncio.Event()
        self.done = asyncio.Event()
        self.runtime = runtime
        self.manager: PodManager | None = None
        self.source: StaticDirSource | None = None
        self.servers: KubeletServers | None = None
        self.security: SecurityParts | None = None
        self.podspec: PodSpecFeatures | None = None
        # CNI or the built-in network, when the agent built a process runtime as root
        self.network: AgentNetwork | None = None
        self.node_mode: NodeMode | None = None  # with --kubeconfig only
        self.rotators: list[CertificateRotator] = []  # rotateCertificates, serverTLSBootstrap
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        try:
            services = await self._certificates()  # a bootstrap writes the kubeconfig first
            if self.config.kubeconfig:
                self.node_mode = await _connect_node_mode(self.config, self.clock)
            services += self._build()
            assert self.runtime is not None
            await self.runtime.start()
            health = await self.runtime.health()
            if not health.ready:  # pods wait for it; say why (CRI Status) instead of hanging
                log.warning("container runtime not ready (%s): %s", health.reason, health.message)
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(s.run(), name=s.name) for s in services]
                tg.create_task(self._after_sources_ready(), name="orphans")
                await self._wait_servers_ready()
                self._log_startup()
                # what start-up made (modules, apps, config) lives as long as the agent: keep
                # the cyclic GC from rescanning it in every full collection (with 10,000
                # clients coming and going, one took 260 ms of the event loop; 90 ms frozen)
                gc.freeze()
                self.ready.set()
                await self._stop.wait()
                for t in tasks:
                    t.cancel()
                raise _Stopped
        except* _Stopped:
            pass
        except* PykubeletError as group:
            # a part refused to start (bad settings): report the first reason, not a traceback
            first = group.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        finally:
            if self.runtime is not None:
                await self.runtime.aclose()  # connections, helper zygote; containers keep running
            self.done.set()
            log.info("pykubelet stopped; containers were left running")

    # ----- wiring (the one place parts meet) -----

    async def _certificates(self) -> list[_Service]:
        """TLS bootstrap and certificate rotation (node mode only): may rewrite the kubeconfig
        and point the server at the rotating serving certificate, so it runs first."""
        cfg = self.config
        if not cfg.kubeconfig:
            for name, on in (
                ("rotateCertificates", cfg.rotate_certificates),
                ("serverTLSBootstrap", cfg.server_tls_bootstrap),
            ):
                if on:
                    log.warning("%s is set but has no effect without --kubeconfig", name)
            return []
        from pykubelet.node.cert_rotation import prepare_node_certificates

        addresses = [cfg.node_name, _host_ip(cfg)]
        self.config, rotators = await prepare_node_certificates(
            cfg, self.clock, node_addresses=addresses
        )
        self.rotators = rotators
        return [_Service(name=f"{r.kind}-certificate", run=r.run) for r in rotators]

    def _build(self) -> list[_Service]:
        cfg = self.config
        # one name lookup for every part that reports the node's IP
        host_ip = _node_ip(cfg) if self.node_mode is not None else _host_ip(cfg)
        if self.runtime is None:
            if cfg.runtime == "process":
                self.network = build_network(cfg)
            self.runtime = build_runtime(cfg, self.clock, network=self.network, node_ip=host_ip)
        runtime = self.runtime
        statuses = StatusManager(self.clock)
        spec = PodSpecFeatures(
            runtime=runtime,
            images=runtime,
            clock=self.clock,
            pods_dir=str(Path(cfg.root_dir) / "pods"),
            node_name=cfg.node_name,
            host_ip=host_ip,
            allocatable=_allocatable(cfg),
            recorder=default_metrics(),
            config_source=self.node_mode.config_source if self.node_mode is not None else None,
            events=self.node_mode.events if self.node_mode is not None else None,
        )
        self.podspec = spec
        docker_config = DockerConfigFiles.for_node(cfg.docker_config_file, cfg.root_dir)
        docker_config.check()  # a dockerConfigFile named must exist and parse
        deps = WorkerDeps(
            runtime=runtime,
            images=runtime,
            statuses=statuses,
            clock=self.clock,
            builder=RuntimeConfigBuilder(
                root_dir=cfg.root_dir,
                cgroup_root=cfg.cgroup_root,
                pod_pids_limit=cfg.pod_pids_limit,
                value_from=spec.setup.value_from,
                hooks=(spec.setup.container_config,),
            ),
            runtime_name=_runtime_scheme(cfg),
            crash_backoff=Backoff(self.clock),
            image_backoff=Backoff(self.clock),
            pull_credentials=PullCredentials(
                docker_config,
                secrets=self.node_mode.pull_secrets if self.node_mode is not None else None,
            ),
            image_pull_gate=pull_gate(cfg.serialize_image_pulls, cfg.max_parallel_image_pulls),
            counters=WorkerCounters(),
            host_ip=host_ip,
            cache=ContainerCache(),
            readiness=spec.probes.readiness,
            started=spec.probes.started,
            prepare_pod=spec.setup.prepare_pod,
            prepare_container=spec.setup.prepare_container,
            on_container_started=spec.hooks.post_start,
            on_container_running=spec.probes.on_container_running,
            on_container_exited=spec.probes.on_container_exited,
            pre_stop=spec.hooks.pre_stop,
            on_pod_removed=spec.setup.on_pod_removed,
            **({"events": self.node_mode.events} if self.node_mode is not None else {}),
        )
        self.manager = PodManager(
            deps,
            max_pods=cfg.max_pods,
            node_info=self.node_mode.admission_node if self.node_mode is not None else None,
            on_pods_changed=self.node_mode.pods_changed if self.node_mode is not None else None,
        )
        spec.connect(wake=self.manager.wake, kill=self.manager.kill_container)
        image_gc = ImageGC(
            runtime,
            runtime,
            self.clock,
            high_percent=cfg.image_gc_high_threshold_percent,
            low_percent=cfg.image_gc_low_threshold_percent,
            minimum_age_s=cfg.image_minimum_gc_age_s,
        )
        services = [
            _Service(name="pod-manager", run=self.manager.run),
            _Service(name="podspec", run=self._podspec_service),
            _Service(name="image-gc", run=image_gc.run),
        ]
        if cfg.static_pod_path:
            self.source = StaticDirSource(
                cfg.static_pod_path,
                cfg.node_name,
                self.manager.updates,
                clock=self.clock,
                file_check_frequency_s=cfg.file_check_frequency_s,
            )
            services.append(_Service(name="static-pods", run=self.source.run))
        services.extend(self._build_log_loss_watch(runtime))
        services.extend(self._build_servers())
        services.extend(self._build_node_mode(statuses))
        return services

    def _build_log_loss_watch(self, runtime: object) -> list[_Service]:
        """Container output the process runtime's shims could not write (disk full): counted,
        logged, and a Warning event on the pod in node mode. (CRI: containerd's shim writes.)"""
        log_loss_files = getattr(runtime, "log_loss_files", None)
        if log_loss_files is None:
            return []
        from pykubelet.pods.events import WARNING, container_field_path
        from pykubelet.pods.runtime_config import LABEL_POD_UID
        from pykubelet.runtime.process.logloss import LogLoss, LogLossWatch
        from pykubelet.runtime.types import ContainerStatus

        events = self.node_mode.events if self.node_mode is not None else None
        manager = self.manager
        assert manager is not None

        def on_loss(status: ContainerStatus, lost: LogLoss, total: LogLoss) -> None:
            pod = manager.get_pod_by_uid(status.labels.get(LABEL_POD_UID, ""))
            if events is None or pod is None:
                return
            events.event(
                pod,
                WARNING,
                "ContainerLogLost",
                f"{lost.records} lines of output ({lost.bytes} bytes) not written to the log "
                f"file: {lost.reason}; {total.records} lost in all",
                field_path=container_field_path(pod, status.name),
            )

        watch = LogLossWatch(on_loss)
        return [_Service(name="container-log-loss", run=lambda: watch.run(log_loss_files))]

    # ----- node mode (only with --kubeconfig; standalone builds none of it) -----

    def _build_node_mode(self, statuses: StatusManager) -> list[_Service]:
        if self.node_mode is None:
            return []
        assert self.manager is not None
        manager = self.manager

        async def port() -> int:
            if self.servers is None:
                return self.config.port
            await self.servers.ready.wait()
            return self.servers.full_port or self.config.port

        assert self.runtime is not None
        runtime_health = RuntimeHealthWatch(self.runtime, self.clock)

        def ready_errors() -> list[str]:
            errors = runtime_health.errors()  # CRI Status: runtime down, network not ready
            if not manager.sync_loop_healthy():
                errors.append(
                    "PLEG is not healthy: pleg was last seen active too long ago; threshold is 3m0s"
                )
            return errors

        self.node_mode.attach(
            manager=manager,
            statuses=statuses,
            updates=manager.updates,
            ready_errors=ready_errors,
            port=port,
            refresh_volumes=self.podspec.setup.refresh_api_volumes if self.podspec else None,
            images=self.runtime.list_images,
        )
        services = [_Service(name=name, run=run) for name, run in self.node_mode.services()]
        return [_Service(name="runtime-health", run=runtime_health.run), *services]

    def _build_servers(self) -> list[_Service]:
        cfg = self.config
        if not cfg.enable_server and cfg.read_only_port == 0 and cfg.healthz_port == 0:
            return []
        from pykubelet.security.setup import build_security, request_audit_id
        from pykubelet.server import KubeletServers, ServerBackends, ServerSettings
        from pykubelet.server.stats import build_stats
        from pykubelet.server.streams import StreamBackend, stream_routes

        settings = ServerSettings(
            node_name=cfg.node_name,
            address=cfg.address,
            port=cfg.port,
            read_only_port=cfg.read_only_port,
            healthz_port=cfg.healthz_port,
            healthz_bind_address=cfg.healthz_bind_address,
            enable_server=cfg.enable_server,
            tls_cert_file=cfg.tls_cert_file,
            tls_private_key_file=cfg.tls_private_key_file,
            tls_min_version=cfg.tls_min_version,
            tls_cipher_suites=cfg.tls_cipher_suites,
            client_ca_file=cfg.authentication.x509.client_ca_file,
            anonymous_enabled=cfg.authentication.anonymous.enabled,
            enable_debugging_handlers=cfg.enable_debugging_handlers,
            enable_system_log_handler=cfg.enable_system_log_handler,
            cert_dir=cfg.cert_dir,
            streaming_connection_idle_timeout_s=cfg.streaming_connection_idle_timeout_s,
            configz=configz(cfg),
        )
        assert self.manager is not None and self.runtime is not None
        self.security = build_security(cfg, clock=self.clock)
        if self.security.warning:
            log.warning("\n%s", self.security.warning)
        stats = build_stats(
            node_name=cfg.node_name,
            root_dir=cfg.root_dir,
            runtime=self.runtime,
            pods=self.manager,
            cgroup_root=cfg.cgroup_root or "pykubelet",
            clock=self.clock,
            pod_counters=self.manager.stats,
            next_observer=self.security.observer,  # request log + audit log
        )
        streams = StreamBackend(
            pods=self.manager,
            runtime=self.runtime,
            streaming=self.runtime,
            idle_timeout_s=cfg.streaming_connection_idle_timeout_s,
            recorder_factory=self.security.recorders,  # sessionRecordingDir, else no-op
            audit_id_of=request_audit_id,
        )
        backends = ServerBackends(
            pods=self.manager,
            runtime=self.runtime,
            extra_routes=stats.routes,
            extra_debug_routes=stream_routes(streams),
            extra_read_only_routes=stats.routes,
            observer=stats.observer,
            clock=self.clock,
            authenticator=self.security.authenticator,
            authorizer=self.security.authorizer,
            auth_limiter=self.security.limiter,
        )
        self.servers = KubeletServers(settings, backends)
        return [
            _Service(name="stats", run=stats.collector.run),
            _Service(name="servers", run=self.servers.run),
            _Service(name="audit-log", run=self.security.run_audit),
        ]

    async def _podspec_service(self) -> None:
        """Releases the pod network an earlier agent left for sandboxes that are gone, then
        holds the probe loops until the agent stops."""
        if self.network is not None and self.runtime is not None:
            live = {s.id for s in await self.runtime.list_pod_sandboxes()}
            released = await self.network.cleanup_leftovers(live)
            if released:
                log.info("released the pod network of %d vanished sandbox(es)", len(released))
        try:
            await asyncio.Event().wait()
        finally:
            if self.podspec is not None:
                await self.podspec.close()

    # ----- start-up -----

    async def _after_sources_ready(self) -> None:
        """Once every source has reported its first full set, nothing pykubelet created for
        other pods may keep running (their manifests went away while the agent was down)."""
        if self.manager is None:
            return
        if self.source is not None:
            await self.source.ready.wait()
        if self.node_mode is not None and self.node_mode.source is not None:
            await self.node_mode.source.ready.wait()  # upstream's sourcesReady: the API too
        await self.manager.updates.join()  # the manager has taken the first update
        removed = await self.manager.remove_orphans()
        if removed:
            log.info("removed %d sandbox(es) of pods whose manifests are gone", removed)
        if self.podspec is not None:
            desired = {p.uid for p in self.manager.list_pods()}
            gone = await self.podspec.cleanup_orphans(desired)
            if gone:
                log.info("removed the volumes of %d pod(s) whose manifests are gone", len(gone))

    async def _wait_servers_ready(self) -> None:
        if self.servers is not None:
            waiter = asyncio.ensure_future(self.servers.ready.wait())
            done = asyncio.ensure_future(self.servers.done.wait())
            await asyncio.wait((waiter, done), return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            done.cancel()

    def _log_startup(self) -> None:
        cfg = self.config
        for line in describe_host():
            log.info("host: %s", line)
        caps = getattr(self.runtime, "capabilities", None)
        if caps is not None:
            log.info(
                "runtime enforces: namespaces=%s overlay=%s cgroups=%s user switching=%s",
                caps.namespaces,
                caps.overlay,
                caps.cgroups,
                caps.user_switch,
            )
            for line in caps.warnings():
                log.warning("%s", line)
        log.info("runtime %r, node %r, root dir %s", cfg.runtime, cfg.node_name, cfg.root_dir)
        if isinstance(self.network, BridgeNetwork):
            log.info(
                "pod network: built-in bridge %s on %s (no CNI config in %s)",
                self.network.bridge,
                self.network.subnet,
                cfg.cni_conf_dir,
            )
        elif self.network is not None:
            log.info("pod network: CNI, config from %s", cfg.cni_conf_dir)
        if cfg.static_pod_path:
            log.info("watching static pods in %s", cfg.static_pod_path)
        if self.servers is not None and self.servers.full_port:
            host = "127.0.0.1" if cfg.address in ("0.0.0.0", "::") else cfg.address
            log.info(
                "kubelet API: curl --cacert %s/kubelet.crt --cert CLIENT.crt --key CLIENT.key "
                "https://%s:%d/pods",
                cfg.cert_dir,
                host,
                self.servers.full_port,
            )


class _Stopped(Exception):
    """Raised inside the task group to end it on ``stop()``."""


def _runtime_scheme(config: KubeletConfiguration) -> str:
    """Container ids in status are ``<scheme>://<id>``: ``pykubelet`` for the process runtime
    (documented), ``containerd`` for CRI, ``fake`` for the test runtime."""
    return {"process": "pykubelet", "cri": "containerd", "fake": "fake"}[config.runtime]

"""Runtime boundary values ↔ CRI v1 messages (sans-IO).

What the kubelet sends is in ``node-and-cri.md`` §7.3/7.4. Two pykubelet facts travel in the
sandbox's annotations, since CRI's status does not return them: the cgroup parent (stats read the
container cgroups under it) and nothing else. Times: CRI uses int nanoseconds, we float seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pykubelet.runtime.cri.v1 import api_pb2 as pb
from pykubelet.runtime.types import (
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ImageInfo,
    NamespaceMode,
    SandboxConfig,
    SandboxState,
    SandboxStatus,
    SecurityConfig,
)

__all__ = [
    "CGROUP_PARENT_ANNOTATION",
    "container_config",
    "container_state",
    "container_stats",
    "container_status",
    "image_info",
    "namespace_mode",
    "sandbox_config",
    "sandbox_state",
    "sandbox_status",
]

CGROUP_PARENT_ANNOTATION = "pykubelet.io/cgroup-parent"

_NS: dict[NamespaceMode, Any] = {
    NamespaceMode.POD: pb.POD,
    NamespaceMode.CONTAINER: pb.CONTAINER,
    NamespaceMode.NODE: pb.NODE,
}
_NS_BACK: dict[int, NamespaceMode] = {v: k for k, v in _NS.items()}
_STATE: dict[int, ContainerState] = {
    pb.CONTAINER_CREATED: ContainerState.CREATED,
    pb.CONTAINER_RUNNING: ContainerState.RUNNING,
    pb.CONTAINER_EXITED: ContainerState.EXITED,
    pb.CONTAINER_UNKNOWN: ContainerState.UNKNOWN,
}


def container_state(state: int) -> ContainerState:
    return _STATE.get(state, ContainerState.UNKNOWN)


def _s(ns: int) -> float:
    secs, rest = divmod(ns, 1_000_000_000)
    return secs + rest / 1e9  # ns / 1e9 would round 1.25 s after an epoch second wrongly


def sandbox_state(state: int) -> SandboxState:
    return SandboxState.READY if state == pb.SANDBOX_READY else SandboxState.NOTREADY


def namespace_mode(mode: int) -> NamespaceMode:
    return _NS_BACK.get(mode, NamespaceMode.POD)


def _namespaces(config: SandboxConfig) -> pb.NamespaceOption:
    return pb.NamespaceOption(network=_NS[config.network], pid=_NS[config.pid], ipc=_NS[config.ipc])


def sandbox_config(config: SandboxConfig) -> pb.PodSandboxConfig:
    """CRI's PodSandboxConfig; the cgroup parent is absolute (cgroupfs driver)."""
    annotations = dict(config.annotations)
    if config.cgroup_parent:
        annotations[CGROUP_PARENT_ANNOTATION] = config.cgroup_parent
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(
            name=config.name, namespace=config.namespace, uid=config.uid, attempt=config.attempt
        ),
        hostname=config.hostname,
        log_directory=config.log_directory,
        dns_config=pb.DNSConfig(servers=list(config.dns_servers)) if config.dns_servers else None,
        port_mappings=[
            pb.PortMapping(
                protocol=_protocol(p.protocol),
                container_port=p.container_port,
                host_port=p.host_port,
                host_ip=p.host_ip,
            )
            for p in config.port_mappings
        ],
        labels=dict(config.labels),
        annotations=annotations,
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent="/" + config.cgroup_parent.strip("/") if config.cgroup_parent else "",
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=_namespaces(config),
                # the sandbox runs RuntimeDefault, as the Go kubelet asks (§7.3)
                seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault),
            ),
        ),
    )


def _protocol(name: str) -> Any:
    return {"TCP": pb.TCP, "UDP": pb.UDP, "SCTP": pb.SCTP}.get(name.upper(), pb.TCP)


def _seccomp(sec: SecurityConfig) -> pb.SecurityProfile:
    """1.20: no profile asked for means Unconfined for containers (§7.4); a Localhost profile
    travels as its absolute path (containerd reads the file at CreateContainer)."""
    if sec.seccomp == "RuntimeDefault":
        return pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault)
    if sec.seccomp == "Localhost":
        return pb.SecurityProfile(
            profile_type=pb.SecurityProfile.Localhost, localhost_ref=sec.seccomp_localhost_ref
        )
    return pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined)


def _security(sec: SecurityConfig, sandbox: SandboxConfig) -> pb.LinuxContainerSecurityContext:
    ctx = pb.LinuxContainerSecurityContext(
        capabilities=pb.Capability(
            add_capabilities=list(sec.capabilities.add),
            drop_capabilities=list(sec.capabilities.drop),
        ),
        privileged=sec.privileged,
        namespace_options=_namespaces(sandbox),
        readonly_rootfs=sec.readonly_rootfs,
        supplemental_groups=list(sec.supplemental_groups),
        no_new_privs=sec.no_new_privs,
        seccomp=_seccomp(sec),
    )
    if sec.run_as_user is not None:
        ctx.run_as_user.value = sec.run_as_user
    if sec.run_as_group is not None:
        ctx.run_as_group.value = sec.run_as_group
    return ctx


def container_config(config: ContainerConfig, sandbox: SandboxConfig) -> pb.ContainerConfig:
    r = config.resources
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=config.name, attempt=config.attempt),
        image=pb.ImageSpec(image=config.image),
        command=list(config.command),
        args=list(config.args),
        working_dir=config.working_dir,
        envs=[pb.KeyValue(key=k, value=v) for k, v in config.envs],
        mounts=[
            pb.Mount(container_path=m.container_path, host_path=m.host_path, readonly=m.readonly)
            for m in config.mounts
        ],
        labels=dict(config.labels),
        annotations=dict(config.annotations),
        log_path=config.log_path,
        stdin=config.stdin,
        stdin_once=config.stdin_once,
        tty=config.tty,
        linux=pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(
                cpu_period=r.cpu_period_us,
                cpu_quota=r.cpu_quota_us,
                cpu_shares=r.cpu_shares,
                memory_limit_in_bytes=r.memory_limit_bytes,
            ),
            security_context=_security(config.security, sandbox),
        ),
    )


def sandbox_status(s: pb.PodSandboxStatus) -> SandboxStatus:
    network = s.linux.namespaces.options.network if s.HasField("linux") else pb.POD
    return SandboxStatus(
        id=s.id,
        name=s.metadata.name,
        namespace=s.metadata.namespace,
        uid=s.metadata.uid,
        attempt=s.metadata.attempt,
        state=sandbox_state(s.state),
        created_at=_s(s.created_at),
        ip=s.network.ip,
        additional_ips=tuple(ip.ip for ip in s.network.additional_ips),
        # probes and hooks reach the pod IP from the host, as the Go kubelet does
        netns_path="",
        network=namespace_mode(network),
        cgroup_parent=s.annotations.get(CGROUP_PARENT_ANNOTATION, ""),
        labels=dict(s.labels),
        annotations=_user_annotations(s.annotations),
    )


def _user_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in annotations.items() if k != CGROUP_PARENT_ANNOTATION}


def container_status(s: pb.ContainerStatus, sandbox_id: str, cgroup_parent: str) -> ContainerStatus:
    return ContainerStatus(
        id=s.id,
        sandbox_id=sandbox_id,
        name=s.metadata.name,
        attempt=s.metadata.attempt,
        state=container_state(s.state),
        image=s.image.image,
        image_ref=s.image_ref,
        created_at=_s(s.created_at),
        started_at=_s(s.started_at),
        finished_at=_s(s.finished_at),
        exit_code=s.exit_code,
        reason=s.reason,
        message=s.message,
        log_path=s.log_path,
        # runc's cgroupfs path: <sandbox cgroup parent>/<container id>
        cgroup_path=f"{cgroup_parent.strip('/')}/{s.id}" if cgroup_parent else "",
        labels=dict(s.labels),
        annotations=dict(s.annotations),
    )


def image_info(image: pb.Image) -> ImageInfo:
    user = image.username or (str(image.uid.value) if image.HasField("uid") else "")
    return ImageInfo(
        id=image.id,
        repo_tags=tuple(image.repo_tags),
        size_bytes=image.size,
        config_user=user,
        repo_digests=tuple(image.repo_digests),  # node status names, image GC's in-use check
    )


def container_stats(s: pb.ContainerStats, timestamp: float) -> ContainerStats:
    cpu, mem = s.cpu, s.memory
    ts = cpu.timestamp or mem.timestamp
    return ContainerStats(
        container_id=s.attributes.id,
        timestamp=_s(ts) if ts else timestamp,
        cpu_usage_core_ns=cpu.usage_core_nano_seconds.value,
        memory_usage_bytes=mem.usage_bytes.value,
        memory_working_set_bytes=mem.working_set_bytes.value,
        memory_rss_bytes=mem.rss_bytes.value,
        page_faults=mem.page_faults.value,
        major_page_faults=mem.major_page_faults.value,
        rootfs_used_bytes=s.writable_layer.used_bytes.value,
    )

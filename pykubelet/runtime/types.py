"""Values crossing the runtime boundary, shaped like CRI v1 messages (never pod specs).

The pod layer translates a pod spec into these; a runtime (process or CRI) only ever sees them.
Times are float seconds since the epoch; sizes are bytes; ``0`` / ``None`` mean "not set".
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "Capabilities",
    "ContainerConfig",
    "ContainerState",
    "ContainerStats",
    "ContainerStatus",
    "ExecResult",
    "ImageFsUsage",
    "ImageInfo",
    "LinuxResources",
    "Mount",
    "NamespaceMode",
    "PortMapping",
    "RegistryAuth",
    "SandboxConfig",
    "SandboxState",
    "SandboxStatus",
    "SecurityConfig",
    "StreamIO",
    "TerminalSize",
    "RuntimeFeatures",
    "RuntimeHealth",
    "RuntimeVersion",
    "labels_match",
]


class NamespaceMode(enum.Enum):
    """CRI NamespaceMode: whose namespace a container uses."""

    POD = "pod"  # the sandbox's namespace, shared by the pod's containers
    CONTAINER = "container"  # a namespace of the container's own
    NODE = "node"  # the host's namespace


class SandboxState(enum.Enum):
    READY = "SANDBOX_READY"
    NOTREADY = "SANDBOX_NOTREADY"


class ContainerState(enum.Enum):
    CREATED = "CONTAINER_CREATED"
    RUNNING = "CONTAINER_RUNNING"
    EXITED = "CONTAINER_EXITED"
    UNKNOWN = "CONTAINER_UNKNOWN"


@dataclass(frozen=True, slots=True, kw_only=True)
class PortMapping:
    container_port: int
    host_port: int = 0
    protocol: str = "TCP"
    host_ip: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxConfig:
    """What RunPodSandbox needs: pod identity, namespaces, and where logs go."""

    name: str
    namespace: str
    uid: str
    attempt: int = 0
    hostname: str = ""  # empty for hostNetwork pods, as upstream
    log_directory: str = ""  # <root>/logs/pods/<ns>_<name>_<uid>
    network: NamespaceMode = NamespaceMode.POD  # NODE for hostNetwork
    pid: NamespaceMode = NamespaceMode.CONTAINER  # POD for shareProcessNamespace, NODE for hostPID
    ipc: NamespaceMode = NamespaceMode.POD  # NODE for hostIPC
    cgroup_parent: str = ""  # e.g. "pykubelet/pod<uid>"; runtime-relative
    pids_limit: int = 0  # pids.max of the pod's cgroup (podPidsLimit); 0: no limit
    port_mappings: tuple[PortMapping, ...] = ()
    dns_servers: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxStatus:
    id: str
    name: str
    namespace: str
    uid: str
    attempt: int
    state: SandboxState
    created_at: float
    ip: str = ""
    additional_ips: tuple[str, ...] = ()
    # optional (process runtime): the sandbox's network namespace for probes to enter; ""
    # means probes and port-forward reach ``ip`` from the host (host network, CRI runtimes)
    netns_path: str = ""
    network: NamespaceMode = NamespaceMode.POD
    cgroup_parent: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LinuxResources:
    """Limits as CRI carries them; 0 means unlimited."""

    cpu_period_us: int = 0
    cpu_quota_us: int = 0
    cpu_shares: int = 0
    memory_limit_bytes: int = 0
    pids_limit: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    add: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityConfig:
    run_as_user: int | None = None
    run_as_group: int | None = None
    supplemental_groups: tuple[int, ...] = ()
    readonly_rootfs: bool = False
    no_new_privs: bool = False
    privileged: bool = False
    capabilities: Capabilities = Capabilities()
    # seccompProfile type: "" (not asked: Unconfined, as 1.20), "Unconfined", "RuntimeDefault",
    # "Localhost"; only a runtime whose RuntimeFeatures.seccomp is true ever receives the last two
    seccomp: str = ""
    seccomp_localhost_ref: str = ""  # Localhost: the profile's absolute path on the node


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerConfig:
    """What CreateContainer needs; ``command``/``args`` arrive $(VAR)-expanded by the caller."""

    name: str
    attempt: int = 0
    image: str = ""
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str = ""
    envs: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    log_path: str = ""  # relative to SandboxConfig.log_directory: "<name>/<attempt>.log"
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    resources: LinuxResources = LinuxResources()
    security: SecurityConfig = SecurityConfig()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerStatus:
    id: str
    sandbox_id: str
    name: str
    attempt: int
    state: ContainerState
    image: str
    image_ref: str = ""
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""  # "OOMKilled", "Completed", "Error"
    message: str = ""
    log_path: str = ""  # absolute path of the current log file
    # optional facts for stats (0/"" = the runtime does not say): the host pid of the main
    # process while running (process runtime), and the runtime-relative cgroup path, the same
    # under every hierarchy (both runtimes; cgroupfs driver)
    pid: int = 0
    cgroup_path: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageInfo:
    id: str  # sha256:<digest of the config>
    repo_tags: tuple[str, ...]
    size_bytes: int
    # process runtime only (read inside runtime/process/): the unpacked read-only lower dir
    rootfs_path: str = ""
    # the host's own root filesystem (the process runtime's ``host`` image): nothing may be
    # bind-mounted into it, e.g. no termination-message file
    host_root: bool = False
    config_entrypoint: tuple[str, ...] = ()
    config_cmd: tuple[str, ...] = ()
    config_env: tuple[str, ...] = ()
    config_working_dir: str = ""
    config_user: str = ""
    # "<repository>@sha256:<manifest digest>" for each repository it was pulled from
    repo_digests: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryAuth:
    """Credentials for one pull, as CRI's ``AuthConfig`` (and a docker config file entry).

    ``auth`` is base64 ``user:password`` and stands in for both when they are empty;
    ``identity_token`` is an OAuth2 refresh token exchanged at the registry's token realm;
    ``server`` is the registry the credentials were found for (informational).
    """

    username: str = ""
    password: str = ""
    auth: str = ""
    identity_token: str = ""
    server: str = ""

    def __repr__(self) -> str:  # never log secrets
        return f"RegistryAuth(server={self.server!r}, username={self.username!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageFsUsage:
    """The filesystem that holds images (CRI ``ImageFsInfo`` plus its capacity, as cadvisor's
    ``ImagesFsInfo``): image GC compares ``1 - available/capacity`` with its thresholds."""

    capacity_bytes: int
    available_bytes: int
    images_bytes: int  # bytes used by the images themselves


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerStats:
    """One sample of a container's usage, read from its cgroup."""

    container_id: str
    timestamp: float
    cpu_usage_core_ns: int = 0
    memory_usage_bytes: int = 0
    memory_working_set_bytes: int = 0
    memory_rss_bytes: int = 0
    page_faults: int = 0
    major_page_faults: int = 0
    pids: int = 0
    rootfs_used_bytes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeVersion:
    runtime_name: str
    runtime_version: str
    runtime_api_version: str = "v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeHealth:
    """CRI ``Status``: the runtime and its pod network are ready (the node's Ready condition);
    ``reason``/``message`` explain the first condition that is not."""

    runtime_ready: bool
    network_ready: bool
    reason: str = ""
    message: str = ""

    @property
    def ready(self) -> bool:
        return self.runtime_ready and self.network_ready


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeFeatures:
    """What a runtime enforces beyond the common contract (an optional capability: a runtime
    without a ``features`` attribute has none of these, and the pod-spec layer refuses them)."""

    seccomp: bool = False  # seccompProfile RuntimeDefault and Localhost

    @staticmethod
    def of(runtime: object) -> RuntimeFeatures:
        features = getattr(runtime, "features", None)
        return features if isinstance(features, RuntimeFeatures) else RuntimeFeatures()


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalSize:
    width: int
    height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamIO:
    """The I/O of one exec or attach session. The runtime never sees frames, only bytes.

    ``stdin`` yields chunks until the client half-closes; ``stdout``/``stderr`` are awaited for
    back-pressure; ``resize`` yields terminal sizes while the session lasts.
    """

    stdin: AsyncIterator[bytes] | None = None
    stdout: Callable[[bytes], Awaitable[None]] | None = None
    stderr: Callable[[bytes], Awaitable[None]] | None = None
    tty: bool = False
    resize: AsyncIterator[TerminalSize] | None = None


def labels_match(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    """CRI's label selector: every key of ``selector`` present in ``labels`` with that value."""
    return all(labels.get(k) == v for k, v in selector.items())

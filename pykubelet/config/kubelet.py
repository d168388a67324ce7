"""KubeletConfiguration (kubelet.config.k8s.io/v1beta1): defaults < config file < flags.

This is the only module that reads flags, configuration files and the environment. It returns
one frozen ``KubeletConfiguration``; every invalid field is reported at once, one line per field
(``ConfigError.problems``), so a bad file is fixed in one pass.

Every v1beta1 field is in one of two tables: ``_FIELDS`` (implemented; a row gives the JSON path,
the attribute, the parser, the flag and the help line) or ``upstream.NOT_ENFORCED`` (accepted,
one start-up warning when set). Unknown fields are warnings unless ``--strict-config``, as
upstream's lenient decoding. Precedence: defaults < ``--config`` < ``--config-dir`` drop-ins
(JSON merge patches, in lexical order) < flags.

Defaults are the secure config-file defaults of upstream v1beta1, except ``authorization.mode``
(``Policy``: a local RBAC-style file) and ``rootDir`` (``/var/lib/pykubelet``, so a Go kubelet on
the same machine is never disturbed). docs/config.md lists every field.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import json
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import yaml

from pykubelet.api.quantity import parse_quantity as _quantity
from pykubelet.config.upstream import NOT_ENFORCED, check_kind, is_quiet
from pykubelet.core.errors import InvalidInput

__all__ = [
    "Anonymous",
    "Authentication",
    "Authorization",
    "ConfigError",
    "Field",
    "KubeletConfiguration",
    "WebhookAuthentication",
    "WebhookAuthorization",
    "X509Authentication",
    "build_parser",
    "configz",
    "format_duration",
    "load_config",
    "parse_duration",
    "parse_quantity",
    "IGNORED_FIELDS",
    "field_status",
    "merge_drop_ins",
]

API_VERSION = "kubelet.config.k8s.io/v1beta1"
KIND = "KubeletConfiguration"
AUTHORIZATION_MODES = ("AlwaysAllow", "Webhook", "Policy")
RUNTIMES = ("process", "cri", "fake")

LOG_FORMATS = ("text", "json")

# Upstream v1beta1 fields accepted but not enforced (upstream.py holds the table).
IGNORED_FIELDS = frozenset(NOT_ENFORCED)


class ConfigError(InvalidInput):
    """One or more configuration fields are invalid; ``problems`` holds one line per field."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True, kw_only=True)
class X509Authentication:
    client_ca_file: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookAuthentication:
    enabled: bool = True
    cache_ttl_s: float = 120.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Anonymous:
    enabled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Authentication:
    x509: X509Authentication = X509Authentication()
    webhook: WebhookAuthentication = WebhookAuthentication()
    anonymous: Anonymous = Anonymous()
    token_file: str = ""  # pykubelet extension: kube-apiserver --token-auth-file CSV


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookAuthorization:
    cache_authorized_ttl_s: float = 300.0
    cache_unauthorized_ttl_s: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorization:
    mode: str = "Policy"
    webhook: WebhookAuthorization = WebhookAuthorization()
    policy_file: str = ""  # default <rootDir>/policy.yaml (filled in by load_config)


@dataclass(frozen=True, slots=True, kw_only=True)
class KubeletConfiguration:
    """The node's whole configuration. Durations are seconds (``_s``), sizes bytes (``_bytes``)."""

    # the HTTP server (reference §6)
    enable_server: bool = True
    address: str = "0.0.0.0"
    port: int = 10250
    read_only_port: int = 0
    healthz_port: int = 10248
    healthz_bind_address: str = "127.0.0.1"
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    tls_cipher_suites: tuple[str, ...] = ()
    tls_min_version: str = ""
    rotate_certificates: bool = False
    server_tls_bootstrap: bool = False
    authentication: Authentication = Authentication()
    authorization: Authorization = Authorization()
    enable_debugging_handlers: bool = True
    enable_system_log_handler: bool = True
    streaming_connection_idle_timeout_s: float = 4 * 3600.0
    # pods and logs
    static_pod_path: str = ""
    max_pods: int = 110
    file_check_frequency_s: float = 20.0
    container_log_max_size_bytes: int = 10 * 1024 * 1024
    container_log_max_files: int = 5
    cgroup_root: str = ""
    pod_pids_limit: int = -1  # pids.max of each pod's cgroup; -1 (or 0): no limit, as upstream
    pod_cidr: str = ""  # the built-in network's subnet ("": 10.88.42.0/24); CNI configs own theirs
    # images: GC when the image filesystem is fuller than high%, down to low%; 100 disables
    image_gc_high_threshold_percent: int = 85
    image_gc_low_threshold_percent: int = 80
    image_minimum_gc_age_s: float = 120.0
    serialize_image_pulls: bool = True  # one pull at a time, as upstream's default
    max_parallel_image_pulls: int = 0  # with serializeImagePulls false: at most this many (0: any)
    docker_config_file: str = ""  # registry credentials ("": <rootDir>/config.json, ~/.docker)
    image_registry_ca_file: str = ""  # CAs trusted for registries besides the system's
    # pykubelet extensions (config file and flags) and flag-only settings
    root_dir: str = "/var/lib/pykubelet"
    cni_conf_dir: str = "/etc/cni/net.d"  # first *.conflist/*.conf wins; none: built-in bridge
    cni_bin_dir: str = "/usr/lib/cni"
    node_name: str = ""
    node_ip: str = ""  # --node-ip; "" detects (host/nodeip.py)
    runtime: str = "process"
    container_runtime_endpoint: str = ""
    cert_dir: str = ""  # default <rootDir>/pki
    kubeconfig: str = ""
    # node mode (with kubeconfig; docs/node.md)
    node_labels: tuple[tuple[str, str], ...] = ()
    register_node: bool = True
    register_with_taints: tuple[tuple[str, str, str], ...] = ()  # (key, value, effect)
    node_status_update_frequency_s: float = 0.0  # 0: default 10 s (filled in by load_config)
    node_status_report_frequency_s: float = 0.0  # 0: 5 m, or the update frequency if only it is set
    node_lease_duration_s: int = 40
    sync_frequency_s: float = 60.0  # API pods' ConfigMap/Secret/token volumes re-read this often
    # (0: the default)
    config_map_and_secret_change_detection_strategy: str = "Watch"  # or "Get"
    node_status_max_images: int = 50  # -1: no cap, 0: none
    kube_api_qps: float = 50.0  # upstream >= 1.27 defaults (1.20: 5 / 10)
    kube_api_burst: int = 100
    event_record_qps: float = 5.0
    event_burst: int = 10
    audit_log_path: str = ""
    audit_log_max_size_mb: int = 100
    audit_log_max_backup: int = 10
    session_recording_dir: str = ""
    bootstrap_kubeconfig: str = ""  # TLS bootstrap credentials; writes ``kubeconfig``
    config_file: str = ""
    config_dir: str = ""  # --config-dir: *.conf drop-ins merged over --config
    logging_format: str = "text"  # logging.format / --logging-format
    log_verbosity: int = 0  # logging.verbosity / -v
    ignored_fields: tuple[str, ...] = field(default=())  # set, accepted, not enforced
    unknown_fields: tuple[str, ...] = field(default=())  # not v1beta1 (warned, not refused)

    @property
    def standalone(self) -> bool:
        return not self.kubeconfig


# ----- value parsers: each returns the value or raises ValueError with the reason -----

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """A Go ``time.Duration`` string (``2m``, ``1h30m``, ``500ms``, ``0``) in seconds."""
    s = text.strip()
    if s in ("0", "+0", "-0"):
        return 0.0
    if not s:
        raise ValueError("empty duration")
    sign = -1.0 if s.startswith("-") else 1.0
    body = s.lstrip("+-")
    pos, total = 0, 0.0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r} (Go syntax such as 30s, 2m, 1h30m)")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def parse_quantity(text: str) -> int:
    """A resource quantity (``10Mi``, ``1G``, ``1024``) in bytes."""
    try:
        return _quantity(text.strip()).value()
    except InvalidInput:
        raise ValueError(f"invalid quantity {text!r} (such as 10Mi, 1G, 1024)") from None


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false", "1", "0"):
        return v.lower() in ("true", "1")
    raise TypeError("expected a boolean")


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise TypeError("expected an integer")
    try:
        return int(v)
    except ValueError:
        raise TypeError("expected an integer") from None


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError("expected a string")
    return v


def _str_list(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        return tuple(x for x in v.split(",") if x)
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise TypeError("expected a list of strings")
    return tuple(v)


def _duration(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        raise TypeError("expected a duration string such as 30s (a bare number is nanoseconds)")
    return parse_duration(_str(v))


def _size(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return parse_quantity(_str(v))


def _port(v: Any) -> int:
    n = _int(v)
    if not 0 <= n <= 65535:
        raise ValueError(f"must be between 0 and 65535, got {n}")
    return n


def _nonneg(v: Any) -> int:
    n = _int(v)
    if n < 0:
        raise ValueError(f"must be >= 0, got {n}")
    return n


def _positive(v: Any) -> int:
    n = _int(v)
    if n <= 0:
        raise ValueError(f"must be > 0, got {n}")
    return n


def _pids_limit(v: Any) -> int:
    n = _int(v)
    if n < -1:
        raise ValueError(f"must be -1 (no limit) or >= 0, got {n}")
    return n


def _change_detection(v: Any) -> str:
    s = _str(v) or "Watch"  # empty: the default, as upstream's defaulting
    if s == "Cache":
        raise ValueError("'Cache' (a TTL cache of GETs) is not implemented, supported: Watch, Get")
    if s not in ("Watch", "Get"):
        raise ValueError(f"unsupported value {s!r}, supported: Watch, Get")
    return s


def _pod_cidr(v: Any) -> str:
    """An IPv4 network with room for a gateway and pods (as kubenet took ``podCIDR``)."""
    s = _str(v)
    if not s:
        return s
    try:
        net = ipaddress.IPv4Network(s)
    except ValueError as e:
        raise ValueError(f"not an IPv4 CIDR such as 10.88.42.0/24 ({e})") from e
    if net.prefixlen > 29:
        raise ValueError("too small: a /29 or larger leaves room for pods")
    return str(net)


def _node_ip(v: Any) -> str:
    s = _str(v)
    try:
        return str(ipaddress.ip_address(s)) if s else ""
    except ValueError:
        raise ValueError(f"not an IP address: {s!r}") from None


_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _taints(v: Any) -> tuple[tuple[str, str, str], ...]:
    """``key=value:Effect,...`` (flag) or a list of ``{key, value, effect}`` (file)."""
    items: list[tuple[str, str, str]] = []
    if isinstance(v, str):
        for part in (x.strip() for x in v.split(",") if x.strip()):
            kv, sep, effect = part.rpartition(":")
            if not sep:
                raise ValueError(f"taint {part!r}: expected key[=value]:Effect")
            key, _, value = kv.partition("=")
            items.append((key, value, effect))
    elif isinstance(v, list):
        for t in v:
            if not isinstance(t, dict) or not isinstance(t.get("key"), str):
                raise TypeError("expected a list of taints {key, value, effect}")
            items.append((t["key"], str(t.get("value") or ""), str(t.get("effect") or "")))
    else:
        raise TypeError("expected a list of taints")
    for key, _value, effect in items:
        if not key:
            raise ValueError("a taint needs a key")
        if effect not in _TAINT_EFFECTS:
            raise ValueError(f"taint {key!r}: effect must be one of {', '.join(_TAINT_EFFECTS)}")
    return tuple(items)


def _labels(v: Any) -> tuple[tuple[str, str], ...]:
    """``k=v,k2=v2`` as ``--node-labels`` takes them."""
    out = []
    for part in (x.strip() for x in _str(v).split(",") if x.strip()):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"label {part!r}: expected key=value")
        out.append((key, value))
    return tuple(out)


def _qps(v: Any) -> float:
    """A rate; 0 means no limit (upstream's eventRecordQPS), a negative one is refused."""
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise TypeError("expected a number")
    n = float(v)
    if n < 0:
        raise ValueError(f"must not be negative, got {v}")
    return n


def _percent(v: Any) -> int:
    n = _int(v)
    if not 0 <= n <= 100:
        raise ValueError(f"must be between 0 and 100, got {n}")
    return n


def _choice(options: Sequence[str]) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        s = _str(v)
        if s not in options:
            raise ValueError(f"unsupported value {s!r}, supported: {', '.join(options)}")
        return s

    return check


def _address(v: Any) -> str:
    s = _str(v)
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in s else socket.AF_INET, s)
    except OSError:
        raise ValueError(f"not an IP address: {s!r}") from None
    return s


class Field(NamedTuple):
    """One implemented field: a row of ``_FIELDS`` (plain 4-tuples are rows too).

    ``enforced=False`` marks a field parsed and stored but not acted on yet: any value other
    than its zero value gets the start-up warning and doctor's "accepted, not enforced"."""

    json: str  # dotted v1beta1 path ("" for flag-only settings)
    attr: str  # dotted attribute path in KubeletConfiguration
    conv: Callable[[Any], Any]
    flag: str  # "" when there is none
    help: str = ""
    enforced: bool = True


# One row per field: (JSON path, attribute path, parser, flag or "", help[, enforced]).
_FIELDS: tuple[tuple[Any, ...], ...] = (
    ("enableServer", "enable_server", _bool, "--enable-server", "serve the HTTPS API"),
    ("address", "address", _address, "--address", "IP address to serve on"),
    ("port", "port", _port, "--port", "HTTPS port (0 in the file: the default)"),
    ("readOnlyPort", "read_only_port", _port, "--read-only-port", "unauthenticated HTTP port"),
    ("healthzPort", "healthz_port", _port, "--healthz-port", "localhost /healthz port, 0: off"),
    (
        "healthzBindAddress",
        "healthz_bind_address",
        _address,
        "--healthz-bind-address",
        "IP address of the healthz server",
    ),
    ("tlsCertFile", "tls_cert_file", _str, "--tls-cert-file", "serving certificate (PEM)"),
    (
        "tlsPrivateKeyFile",
        "tls_private_key_file",
        _str,
        "--tls-private-key-file",
        "key of --tls-cert-file",
    ),
    (
        "tlsCipherSuites",
        "tls_cipher_suites",
        _str_list,
        "--tls-cipher-suites",
        "TLS 1.2 suites (Go names, comma-separated)",
    ),
    ("tlsMinVersion", "tls_min_version", _str, "--tls-min-version", "VersionTLS12 or 13"),
    (
        "rotateCertificates",
        "rotate_certificates",
        _bool,
        "--rotate-certificates",
        "renew the client certificate through the API",
    ),
    (
        "serverTLSBootstrap",
        "server_tls_bootstrap",
        _bool,
        "--rotate-server-certificates",
        "get the serving certificate through a CSR",
    ),
    (
        "authentication.x509.clientCAFile",
        "authentication.x509.client_ca_file",
        _str,
        "--client-ca-file",
        "CA bundle that authenticates client certificates",
    ),
    (
        "authentication.webhook.enabled",
        "authentication.webhook.enabled",
        _bool,
        "--authentication-token-webhook",
        "check bearer tokens with TokenReview",
    ),
    (
        "authentication.webhook.cacheTTL",
        "authentication.webhook.cache_ttl_s",
        _duration,
        "--authentication-token-webhook-cache-ttl",
        "how long TokenReview answers are cached",
    ),
    (
        "authentication.anonymous.enabled",
        "authentication.anonymous.enabled",
        _bool,
        "--anonymous-auth",
        "let unauthenticated requests through as system:anonymous",
    ),
    (
        "authorization.mode",
        "authorization.mode",
        _choice(AUTHORIZATION_MODES),
        "--authorization-mode",
        "AlwaysAllow, Webhook or Policy",
    ),
    (
        "authorization.webhook.cacheAuthorizedTTL",
        "authorization.webhook.cache_authorized_ttl_s",
        _duration,
        "--authorization-webhook-cache-authorized-ttl",
        "how long allowed SubjectAccessReviews are cached",
    ),
    (
        "authorization.webhook.cacheUnauthorizedTTL",
        "authorization.webhook.cache_unauthorized_ttl_s",
        _duration,
        "--authorization-webhook-cache-unauthorized-ttl",
        "how long denied SubjectAccessReviews are cached",
    ),
    (
        "authorization.policyFile",
        "authorization.policy_file",
        _str,
        "--authorization-policy-file",
        "RBAC-style policy of mode Policy",
    ),
    (
        "enableDebuggingHandlers",
        "enable_debugging_handlers",
        _bool,
        "--enable-debugging-handlers",
        "serve logs, exec, attach, port-forward",
    ),
    ("enableSystemLogHandler", "enable_system_log_handler", _bool, "", "serve /logs/"),
    (
        "streamingConnectionIdleTimeout",
        "streaming_connection_idle_timeout_s",
        _duration,
        "--streaming-connection-idle-timeout",
        "idle exec/attach/port-forward streams are closed after this",
    ),
    ("staticPodPath", "static_pod_path", _str, "--pod-manifest-path", "static pod directory"),
    ("maxPods", "max_pods", _positive, "--max-pods", "pods admitted at most"),
    (
        "fileCheckFrequency",
        "file_check_frequency_s",
        _duration,
        "--file-check-frequency",
        "full rescan period of staticPodPath",
    ),
    (
        "containerLogMaxSize",
        "container_log_max_size_bytes",
        _size,
        "--container-log-max-size",
        "rotate a container log at this size",
    ),
    (
        "containerLogMaxFiles",
        "container_log_max_files",
        _positive,
        "--container-log-max-files",
        "log files kept per container",
    ),
    ("cgroupRoot", "cgroup_root", _str, "--cgroup-root", "parent cgroup of the pods"),
    (
        "podPidsLimit",
        "pod_pids_limit",
        _pids_limit,
        "--pod-max-pids",
        "max PIDs in a pod (-1: no limit)",
    ),
    ("registerNode", "register_node", _bool, "--register-node", "register the Node object"),
    (
        "registerWithTaints",
        "register_with_taints",
        _taints,
        "--register-with-taints",
        "taints set at registration (key=value:Effect,...)",
    ),
    (
        "syncFrequency",
        "sync_frequency_s",
        _duration,
        "--sync-frequency",
        "how often running API pods' ConfigMap, Secret and token volumes are re-read",
    ),
    (
        "configMapAndSecretChangeDetectionStrategy",
        "config_map_and_secret_change_detection_strategy",
        _change_detection,
        "",
        "node mode: Watch (the referenced objects are watched) or Get (read on each use)",
    ),
    (
        "nodeStatusMaxImages",
        "node_status_max_images",
        _pids_limit,
        "",
        "node mode: images listed in node status (-1: no limit)",
    ),
    (
        "nodeStatusUpdateFrequency",
        "node_status_update_frequency_s",
        _duration,
        "--node-status-update-frequency",
        "node status computation period",
    ),
    (
        "nodeStatusReportFrequency",
        "node_status_report_frequency_s",
        _duration,
        "",
        "node status report period when nothing changed",
    ),
    ("nodeLeaseDurationSeconds", "node_lease_duration_s", _positive, "", "node Lease duration"),
    ("kubeAPIQPS", "kube_api_qps", _qps, "--kube-api-qps", "API client rate limit"),
    ("kubeAPIBurst", "kube_api_burst", _positive, "--kube-api-burst", "API client burst"),
    ("eventRecordQPS", "event_record_qps", _qps, "--event-qps", "event creation rate limit"),
    ("eventBurst", "event_burst", _positive, "--event-burst", "event creation burst"),
    ("podCIDR", "pod_cidr", _pod_cidr, "--pod-cidr", "subnet of the built-in pod network"),
    (
        "imageGCHighThresholdPercent",
        "image_gc_high_threshold_percent",
        _percent,
        "--image-gc-high-threshold",
        "disk usage % that starts image garbage collection",
    ),
    (
        "imageGCLowThresholdPercent",
        "image_gc_low_threshold_percent",
        _percent,
        "--image-gc-low-threshold",
        "disk usage % image garbage collection frees down to",
    ),
    (
        "imageMinimumGCAge",
        "image_minimum_gc_age_s",
        _duration,
        "--minimum-image-ttl-duration",
        "unused images younger than this are kept",
    ),
    (
        "serializeImagePulls",
        "serialize_image_pulls",
        _bool,
        "--serialize-image-pulls",
        "one image pull at a time",
    ),
    (
        "maxParallelImagePulls",
        "max_parallel_image_pulls",
        _nonneg,
        "",
        "image pulls at once with serializeImagePulls false (0: no limit)",
    ),
    (
        "containerRuntimeEndpoint",
        "container_runtime_endpoint",
        _str,
        "--container-runtime-endpoint",
        "CRI socket (runtime cri)",
    ),
    ("logging.format", "logging_format", _choice(LOG_FORMATS), "--logging-format", "text or json"),
    ("logging.verbosity", "log_verbosity", _nonneg, "--v", "log verbosity; 4 and up: debug"),
    # pykubelet extensions
    ("rootDir", "root_dir", _str, "--root-dir", "state directory"),
    ("nodeName", "node_name", _str, "--node-name", "node name (default: the host name)"),
    ("runtime", "runtime", _choice(RUNTIMES), "--runtime", "process, cri or fake"),
    ("certDir", "cert_dir", _str, "--cert-dir", "where a self-signed pair is kept"),
    ("auditLogPath", "audit_log_path", _str, "--audit-log-path", "JSON lines audit log"),
    (
        "auditLogMaxSize",
        "audit_log_max_size_mb",
        _positive,
        "--audit-log-maxsize",
        "rotate the audit log at this many MB",
    ),
    (
        "auditLogMaxBackup",
        "audit_log_max_backup",
        _nonneg,
        "--audit-log-maxbackup",
        "rotated audit logs kept",
    ),
    (
        "sessionRecordingDir",
        "session_recording_dir",
        _str,
        "--session-recording-dir",
        "asciicast recordings of TTY sessions",
    ),
    (
        "authentication.tokenFile",
        "authentication.token_file",
        _str,
        "--token-auth-file",
        "static bearer tokens (CSV)",
    ),
    ("cniConfDir", "cni_conf_dir", _str, "--cni-conf-dir", "CNI network configs"),
    ("cniBinDir", "cni_bin_dir", _str, "--cni-bin-dir", "CNI plugin executables"),
    (
        "dockerConfigFile",
        "docker_config_file",
        _str,
        "--docker-config-file",
        "registry credentials (docker config.json) for every pull",
    ),
    (
        "imageRegistryCAFile",
        "image_registry_ca_file",
        _str,
        "--image-registry-ca-file",
        "extra CAs trusted for registries (process runtime)",
    ),
)
_FLAG_ONLY: tuple[tuple[Any, ...], ...] = (
    (
        "",
        "bootstrap_kubeconfig",
        _str,
        "--bootstrap-kubeconfig",
        "a bootstrap token kubeconfig: TLS bootstrap writes --kubeconfig",
    ),
    ("", "kubeconfig", _str, "--kubeconfig", "API server credentials: join a cluster (node mode)"),
    ("", "node_name", _str, "--hostname-override", "same as --node-name"),
    (
        "",
        "node_ip",
        _node_ip,
        "--node-ip",
        "the node's address (0.0.0.0 or ::: detect that family)",
    ),
    ("", "node_labels", _labels, "--node-labels", "labels added at registration (k=v,...)"),
)
_TABLE: tuple[Field, ...] = tuple(Field(*row) for row in _FIELDS)
_FLAG_TABLE: tuple[Field, ...] = tuple(Field(*row) for row in _FLAG_ONLY)
_OBJECTS = {
    "authentication",
    "authentication.x509",
    "authentication.webhook",
    "authentication.anonymous",
    "authorization",
    "authorization.webhook",
    "logging",
}
_BY_JSON = {f.json: f for f in _TABLE}
_PATH_FIELDS = frozenset(
    """staticPodPath tlsCertFile tlsPrivateKeyFile authentication.x509.clientCAFile
    authorization.policyFile rootDir certDir auditLogPath sessionRecordingDir
    authentication.tokenFile cniConfDir cniBinDir dockerConfigFile imageRegistryCAFile""".split()
)
# As upstream's defaulting: a zero value in a file ("", 0, "0s") means the default.
_ZERO_MEANS_DEFAULT = frozenset(
    """address port healthzBindAddress authentication.webhook.cacheTTL authorization.mode
    authorization.webhook.cacheAuthorizedTTL authorization.webhook.cacheUnauthorizedTTL
    streamingConnectionIdleTimeout maxPods fileCheckFrequency containerLogMaxSize
    logging.format""".split()
)


def field_status(json_path: str) -> str:
    """``implemented``, ``not enforced`` or ``unknown``: what pykubelet does with a field."""
    spec = _BY_JSON.get(json_path)
    if spec is not None:
        return "implemented" if spec.enforced else "not enforced"
    top = json_path.split(".", 1)[0]
    return "not enforced" if json_path in NOT_ENFORCED or top in NOT_ENFORCED else "unknown"


def _type_name(v: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
        type(None): "null",
    }.get(type(v), type(v).__name__)


@dataclass(slots=True)
class _Found:
    """What a walk over a configuration document found."""

    values: dict[str, Any] = field(default_factory=dict)  # implemented fields
    not_enforced: list[str] = field(default_factory=list)  # set, accepted, not enforced
    unknown: list[str] = field(default_factory=list)


def _walk(doc: Mapping[str, Any], prefix: str, found: _Found, problems: list[str]) -> None:
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if not prefix and key in ("kind", "apiVersion"):
            continue
        if path in _OBJECTS:
            if value is None:
                continue
            if not isinstance(value, dict):
                problems.append(f"{path}: expected an object, got {_type_name(value)}")
            else:
                _walk(value, path, found, problems)
        elif path in _BY_JSON:
            found.values[path] = value
        elif path in NOT_ENFORCED:
            spec = NOT_ENFORCED[path]
            try:
                check_kind(spec.kind, value)
            except TypeError as e:
                problems.append(f"{path}: {e}, got {_type_name(value)}")
                continue
            if not is_quiet(spec, value):
                found.not_enforced.append(path)
        else:
            found.unknown.append(path)


def _read_doc(path: str, what: str, problems: list[str]) -> dict[str, Any] | None:
    """One KubeletConfiguration document, relative paths made absolute against its file."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        problems.append(f"{what}: cannot read {path}: {e.strerror}")
        return None
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        problems.append(f"{path}: not valid YAML or JSON: {' '.join(str(e).split())}")
        return None
    if not isinstance(doc, dict):
        problems.append(f"{path}: expected a KubeletConfiguration object, got {_type_name(doc)}")
        return None
    prefix = "" if what == "--config" else f"{path}: "
    if doc.get("kind") != KIND:
        problems.append(f"{prefix}kind: expected {KIND!r}, got {doc.get('kind')!r}")
    if doc.get("apiVersion") != API_VERSION:
        problems.append(
            f"{prefix}apiVersion: expected {API_VERSION!r}, got {doc.get('apiVersion')!r}"
        )
    base = Path(path).absolute().parent
    for dotted in _PATH_FIELDS:  # as upstream: relative paths are relative to their file
        *parents, leaf = dotted.split(".")
        node: Any = doc
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(leaf), str) and node[leaf]:
            node[leaf] = str(base / node[leaf])
    return doc


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as upstream merges ``--config-dir`` drop-ins."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _drop_ins(config_dir: str, problems: list[str]) -> list[str]:
    """``*.conf`` files under the directory, in lexical order of their paths (as upstream)."""
    root = Path(config_dir)
    if not root.is_dir():
        problems.append(f"--config-dir: {config_dir} is not a directory")
        return []
    return sorted(str(p) for p in root.rglob("*.conf") if p.is_file())


def _apply_drop_ins(doc: dict[str, Any], config_dir: str, problems: list[str]) -> dict[str, Any]:
    for path in _drop_ins(config_dir, problems):
        patch = _read_doc(path, "--config-dir", problems)
        if patch is not None:
            doc = _merge_patch(doc, patch)
    return doc


def merge_drop_ins(doc: Mapping[str, Any], config_dir: str) -> dict[str, Any]:
    """``doc`` with the ``--config-dir`` drop-ins applied, as ``load_config`` does (for doctor,
    which checks the merged document); ``ConfigError`` for a bad drop-in."""
    problems: list[str] = []
    merged = _apply_drop_ins(dict(doc), config_dir, problems)
    if problems:
        raise ConfigError(problems)
    return merged


def _check_json_type(conv: Callable[[Any], Any], value: Any) -> None:
    """A file value must have its JSON type: flags may spell numbers and booleans as text."""
    if isinstance(value, str) and conv in (_bool, _int, _port, _nonneg, _positive, _percent):
        raise TypeError("expected a boolean" if conv is _bool else "expected an integer")


def _is_zero(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return value is None
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, str):
        if not value:
            return True
        try:
            return parse_duration(value) == 0
        except ValueError:
            return False
    return False


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, with the closest flag it knows."""

    def error(self, message: str) -> NoReturn:
        m = re.match(r"unrecognized arguments: (\S+)", message)
        if m:
            bad = m.group(1).split("=", 1)[0]
            known = [o for a in self._actions for o in a.option_strings]
            close = difflib.get_close_matches(bad, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            message = f"unknown flag {bad}{hint} (pykubelet run --help lists them)"
        self.exit(2, f"{self.prog}: {message}\n")


def _default_text(attr: str) -> str:
    value: Any = KubeletConfiguration()
    for part in attr.split("."):
        value = getattr(value, part)
    if isinstance(value, bool):
        return str(value).lower()
    if attr.endswith("_s"):
        return format_duration(float(value))
    if attr.endswith("_bytes"):
        return _size_text(int(value))
    if isinstance(value, tuple):
        return ",".join(value) or '""'
    return str(value) if value != "" else '""'


def _help(spec: Field) -> str:
    parts = [spec.help or (f"sets {spec.json}" if spec.json else "")]
    parts.append(f"(default {_default_text(spec.attr)}")
    parts[-1] += f"; config: {spec.json})" if spec.json else ")"
    if not spec.enforced:
        parts.append("ACCEPTED, NOT ENFORCED")
    return " ".join(p for p in parts if p).replace("%", "%%")


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    from pykubelet import __version__

    p = _Parser(
        prog="pykubelet run",
        usage="pykubelet run [--config FILE] [--config-dir DIR] [flags]",
        description="Run the node agent. Flags override --config-dir drop-ins, which override "
        "the --config file, which overrides the defaults (docs/config.md).",
        allow_abbrev=False,
    )
    p.add_argument("--version", action="version", version=f"pykubelet {__version__}")
    p.add_argument("--config", metavar="FILE", help="a KubeletConfiguration YAML or JSON file")
    p.add_argument(
        "--config-dir",
        metavar="DIR",
        help="*.conf KubeletConfiguration drop-ins merged over --config in lexical order",
    )
    p.add_argument(
        "--strict-config",
        action="store_true",
        help="refuse unknown fields instead of warning about them",
    )
    for spec in (*_TABLE, *_FLAG_TABLE):
        if not spec.flag:
            continue
        names = [spec.flag, "-v"] if spec.flag == "--v" else [spec.flag]
        if spec.conv is _bool:
            p.add_argument(
                *names,
                dest=_dest(spec.flag),
                metavar="BOOL",
                nargs="?",
                const="true",
                help=_help(spec),
            )
        else:
            p.add_argument(*names, dest=_dest(spec.flag), metavar="VALUE", help=_help(spec))
    return p


def _set(cfg: KubeletConfiguration, attr: str, value: Any) -> KubeletConfiguration:
    head, _, rest = attr.partition(".")
    if not rest:
        return replace(cfg, **{head: value})
    return replace(cfg, **{head: _set_nested(getattr(cfg, head), rest, value)})


def _set_nested(obj: Any, attr: str, value: Any) -> Any:
    head, _, rest = attr.partition(".")
    if not rest:
        return replace(obj, **{head: value})
    return replace(obj, **{head: _set_nested(getattr(obj, head), rest, value)})


def load_config(argv: Sequence[str]) -> KubeletConfiguration:
    """Parse ``pykubelet run`` arguments; raise ``ConfigError`` listing every bad field."""
    ns = build_parser().parse_args(list(argv))
    problems: list[str] = []
    cfg = KubeletConfiguration(config_file=ns.config or "", config_dir=ns.config_dir or "")
    doc: dict[str, Any] = {}
    if ns.config:
        doc = _read_doc(ns.config, "--config", problems) or {}
    if ns.config_dir:
        doc = _apply_drop_ins(doc, ns.config_dir, problems)
    found = _Found()
    _walk(doc, "", found, problems)
    if ns.strict_config:
        problems.extend(f"{path}: unknown field" for path in found.unknown)
    not_enforced = list(found.not_enforced)
    for json_path, value in found.values.items():
        spec = _BY_JSON[json_path]
        if json_path in _ZERO_MEANS_DEFAULT and _is_zero(value):
            continue  # upstream's defaulting: the zero value means "unset"
        try:
            _check_json_type(spec.conv, value)
            cfg = _set(cfg, spec.attr, spec.conv(value))
        except TypeError as e:
            problems.append(f"{json_path}: {e}, got {_type_name(value)}")
        except ValueError as e:
            problems.append(f"{json_path}: {e}")
        else:
            if not spec.enforced and value:
                not_enforced.append(json_path)
    for spec in (*_TABLE, *_FLAG_TABLE):
        raw = getattr(ns, _dest(spec.flag), None) if spec.flag else None
        if raw is None:
            continue
        try:
            value = spec.conv(raw)
            cfg = _set(cfg, spec.attr, value)
        except (TypeError, ValueError) as e:
            problems.append(f"{spec.flag}: {e}: {raw!r}")
        else:
            name = spec.json or spec.flag
            if not spec.enforced and value and name not in not_enforced:
                not_enforced.append(name)
    if problems:
        raise ConfigError(problems)
    return _finish(
        replace(
            cfg,
            ignored_fields=tuple(not_enforced),
            unknown_fields=() if ns.strict_config else tuple(found.unknown),
        )
    )


def _finish(cfg: KubeletConfiguration) -> KubeletConfiguration:
    """Fill in defaults that depend on other fields, and cross-field checks. Paths are made
    absolute (flags relative to the working directory)."""
    problems: list[str] = []
    root = str(Path(cfg.root_dir).absolute()) if cfg.root_dir else ""
    if not root:
        problems.append("rootDir: must not be empty")
    node = (cfg.node_name or socket.gethostname()).strip().lower()
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", node):
        problems.append(f"nodeName: {node!r} is not a valid DNS-1123 subdomain")
    if bool(cfg.tls_cert_file) != bool(cfg.tls_private_key_file):
        problems.append("tlsCertFile: tlsCertFile and tlsPrivateKeyFile must be set together")
    for name, value in (
        ("nodeStatusUpdateFrequency", cfg.node_status_update_frequency_s),
        ("nodeStatusReportFrequency", cfg.node_status_report_frequency_s),
        ("syncFrequency", cfg.sync_frequency_s),
    ):
        if value < 0:
            problems.append(f"{name}: must be >= 0")
    if cfg.image_gc_low_threshold_percent >= cfg.image_gc_high_threshold_percent:
        problems.append(
            "imageGCLowThresholdPercent: must be less than imageGCHighThresholdPercent "
            f"({cfg.image_gc_low_threshold_percent} >= {cfg.image_gc_high_threshold_percent})"
        )
    if cfg.image_minimum_gc_age_s < 0:
        problems.append("imageMinimumGCAge: must not be negative")
    if cfg.serialize_image_pulls and cfg.max_parallel_image_pulls > 1:
        problems.append(
            "maxParallelImagePulls: cannot be larger than 1 unless serializeImagePulls is false"
        )
    if cfg.runtime == "cri" and not cfg.container_runtime_endpoint:
        problems.append("containerRuntimeEndpoint: required with runtime 'cri'")
    endpoint = cfg.container_runtime_endpoint
    if endpoint and not (endpoint.startswith("unix:///") or endpoint.startswith("/")):
        problems.append(
            f"containerRuntimeEndpoint: {endpoint!r} must be unix:///path/to/runtime.sock"
        )
    if endpoint and cfg.runtime == "process":
        # as upstream 1.24+: a runtime endpoint means a CRI runtime (docs/runtime-cri.md)
        cfg = replace(cfg, runtime="cri")
    if cfg.runtime == "cri" and cfg.image_registry_ca_file:
        # the process runtime pulls itself; containerd pulls with its own registry trust
        problems.append(
            "imageRegistryCAFile: has no effect on the CRI runtime; trust the registry's CA "
            "in containerd's registry configuration (config_path, certs.d/<host>/hosts.toml)"
        )
    # rotateCertificates/serverTLSBootstrap without a kubeconfig load (kubeadm writes them into
    # every config) and are warned about at start: a standalone node has nobody to sign
    if cfg.bootstrap_kubeconfig and not cfg.kubeconfig:
        problems.append(
            "--bootstrap-kubeconfig: needs --kubeconfig (where the TLS bootstrap writes the "
            "node's credentials)"
        )
    if problems:
        raise ConfigError(problems)
    authz = cfg.authorization
    authz = replace(authz, policy_file=_abs(authz.policy_file) or str(Path(root) / "policy.yaml"))
    x509 = replace(
        cfg.authentication.x509, client_ca_file=_abs(cfg.authentication.x509.client_ca_file)
    )
    update = cfg.node_status_update_frequency_s
    # as upstream: with only nodeStatusUpdateFrequency set, the report frequency follows it
    report = cfg.node_status_report_frequency_s or (update or 300.0)
    return replace(
        cfg,
        node_status_update_frequency_s=update or 10.0,
        node_status_report_frequency_s=report,
        sync_frequency_s=cfg.sync_frequency_s or 60.0,  # zero: the default, as upstream
        root_dir=root,
        node_name=node,
        cert_dir=_abs(cfg.cert_dir) or str(Path(root) / "pki"),
        static_pod_path=_abs(cfg.static_pod_path),
        tls_cert_file=_abs(cfg.tls_cert_file),
        tls_private_key_file=_abs(cfg.tls_private_key_file),
        audit_log_path=_abs(cfg.audit_log_path),
        session_recording_dir=_abs(cfg.session_recording_dir),
        docker_config_file=_abs(cfg.docker_config_file),
        image_registry_ca_file=_abs(cfg.image_registry_ca_file),
        bootstrap_kubeconfig=_abs(cfg.bootstrap_kubeconfig),
        authentication=replace(
            cfg.authentication, x509=x509, token_file=_abs(cfg.authentication.token_file)
        ),
        authorization=authz,
    )


def _abs(path: str) -> str:
    return str(Path(path).absolute()) if path else ""


def config_field_names() -> tuple[str, ...]:
    """Every JSON field the file accepts (for docs and tests)."""
    return tuple(spec.json for spec in _TABLE)


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for whole and fractional seconds: ``4h0m0s``, ``20s``."""
    if seconds == 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    return f"{int(minutes)}m{text}" if minutes else text


def _size_text(n: int) -> str:
    for unit, factor in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


def configz(cfg: KubeletConfiguration) -> dict[str, Any]:
    """The configuration as /configz serves it: v1beta1 field names and JSON shapes (durations
    as Go duration strings, sizes as quantities), nested objects nested, no kind/apiVersion."""
    out: dict[str, Any] = {}
    for json_path, attr, conv, *_rest in _TABLE:
        value: Any = cfg
        for part in attr.split("."):
            value = getattr(value, part)
        if conv is _duration:
            value = format_duration(float(value))
        elif conv is _size:
            value = _size_text(int(value))
        elif conv is _taints:
            value = [{"key": k, "value": v, "effect": e} for k, v, e in value]
        elif isinstance(value, tuple):
            value = list(value)
        node = out
        *parents, leaf = json_path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out

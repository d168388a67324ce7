"""KubeletConfiguration (kubelet.config.k8s.io/v1beta1): defaults < config file < flags.

This is the only module that reads flags, configuration files and the environment. It returns
one frozen ``KubeletConfiguration``; every invalid field is reported at once, one line per field
(``ConfigError.problems``), so a bad file is fixed in one pass.

Defaults are the secure config-file defaults of upstream v1beta1, except ``authorization.mode``
(``Policy``: a local RBAC-style file) and ``rootDir`` (``/var/lib/pykubelet``, so a Go kubelet on
the same machine is never disturbed). docs/config.md lists every field.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pykubelet.api.quantity import parse_quantity as _quantity
from pykubelet.core.errors import InvalidInput

__all__ = [
    "Anonymous",
    "Authentication",
    "Authorization",
    "ConfigError",
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
]

API_VERSION = "kubelet.config.k8s.io/v1beta1"
KIND = "KubeletConfiguration"
AUTHORIZATION_MODES = ("AlwaysAllow", "Webhook", "Policy")
RUNTIMES = ("process", "cri", "fake")

# Upstream v1beta1 fields we accept so real configuration files load, but do not act on.
IGNORED_FIELDS = frozenset(
    """
    allowedUnsafeSysctls cgroupDriver cgroupsPerQOS clusterDNS clusterDomain
    configMapAndSecretChangeDetectionStrategy contentType cpuCFSQuota cpuCFSQuotaPeriod
    cpuManagerPolicy cpuManagerReconcilePeriod enableContentionProfiling
    enableControllerAttachDetach enableDebugFlagsHandler enableProfilingHandler
    enableSystemLogQuery enforceNodeAllocatable eventBurst eventRecordQPS evictionHard
    evictionMaxPodGracePeriod evictionMinimumReclaim evictionPressureTransitionPeriod
    evictionSoft evictionSoftGracePeriod failSwapOn featureGates hairpinMode
    httpCheckFrequency imageGCHighThresholdPercent imageGCLowThresholdPercent
    imageMinimumGCAge imagePullCredentialsVerificationPolicy iptablesDropBit
    iptablesMasqueradeBit kernelMemcgNotification kubeAPIBurst kubeAPIQPS kubeReserved
    kubeReservedCgroup kubeletCgroups localStorageCapacityIsolation logging
    makeIPTablesUtilChains maxOpenFiles maxParallelImagePulls memorySwap
    nodeLeaseDurationSeconds nodeStatusMaxImages nodeStatusReportFrequency
    nodeStatusUpdateFrequency podPidsLimit podsPerCore protectKernelDefaults
    providerID qosReserved registerNode registerWithTaints registryBurst registryPullQPS
    reservedSystemCPUs resolvConf runtimeRequestTimeout seccompDefault serializeImagePulls
    showHiddenMetricsForVersion shutdownGracePeriod shutdownGracePeriodCriticalPods
    staticPodURL staticPodURLHeader syncFrequency systemCgroups systemReserved
    systemReservedCgroup topologyManagerPolicy volumePluginDir volumeStatsAggPeriod
    """.split()
)


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
    pod_cidr: str = ""  # the built-in network's subnet ("": 10.88.42.0/24); CNI configs own theirs
    # pykubelet extensions (config file and flags) and flag-only settings
    root_dir: str = "/var/lib/pykubelet"
    cni_conf_dir: str = "/etc/cni/net.d"  # first *.conflist/*.conf wins; none: built-in bridge
    cni_bin_dir: str = "/usr/lib/cni"
    node_name: str = ""
    runtime: str = "process"
    container_runtime_endpoint: str = ""
    cert_dir: str = ""  # default <rootDir>/pki
    kubeconfig: str = ""
    audit_log_path: str = ""
    audit_log_max_size_mb: int = 100
    audit_log_max_backup: int = 10
    session_recording_dir: str = ""
    bootstrap_kubeconfig: str = ""  # TLS bootstrap credentials; writes ``kubeconfig``
    config_file: str = ""
    ignored_fields: tuple[str, ...] = field(default=())  # ignored upstream fields the file set

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


# (JSON path, attribute path, converter, flag or "")
_Spec = tuple[str, str, Callable[[Any], Any], str]
_FIELDS: tuple[_Spec, ...] = (
    ("enableServer", "enable_server", _bool, "--enable-server"),
    ("address", "address", _address, "--address"),
    ("port", "port", _port, "--port"),
    ("readOnlyPort", "read_only_port", _port, "--read-only-port"),
    ("healthzPort", "healthz_port", _port, "--healthz-port"),
    ("healthzBindAddress", "healthz_bind_address", _address, "--healthz-bind-address"),
    ("tlsCertFile", "tls_cert_file", _str, "--tls-cert-file"),
    ("tlsPrivateKeyFile", "tls_private_key_file", _str, "--tls-private-key-file"),
    ("tlsCipherSuites", "tls_cipher_suites", _str_list, "--tls-cipher-suites"),
    ("tlsMinVersion", "tls_min_version", _str, "--tls-min-version"),
    ("rotateCertificates", "rotate_certificates", _bool, "--rotate-certificates"),
    ("serverTLSBootstrap", "server_tls_bootstrap", _bool, "--rotate-server-certificates"),
    (
        "authentication.x509.clientCAFile",
        "authentication.x509.client_ca_file",
        _str,
        "--client-ca-file",
    ),
    (
        "authentication.webhook.enabled",
        "authentication.webhook.enabled",
        _bool,
        "--authentication-token-webhook",
    ),
    (
        "authentication.webhook.cacheTTL",
        "authentication.webhook.cache_ttl_s",
        _duration,
        "--authentication-token-webhook-cache-ttl",
    ),
    (
        "authentication.anonymous.enabled",
        "authentication.anonymous.enabled",
        _bool,
        "--anonymous-auth",
    ),
    (
        "authorization.mode",
        "authorization.mode",
        _choice(AUTHORIZATION_MODES),
        "--authorization-mode",
    ),
    (
        "authorization.webhook.cacheAuthorizedTTL",
        "authorization.webhook.cache_authorized_ttl_s",
        _duration,
        "--authorization-webhook-cache-authorized-ttl",
    ),
    (
        "authorization.webhook.cacheUnauthorizedTTL",
        "authorization.webhook.cache_unauthorized_ttl_s",
        _duration,
        "--authorization-webhook-cache-unauthorized-ttl",
    ),
    ("authorization.policyFile", "authorization.policy_file", _str, "--authorization-policy-file"),
    ("enableDebuggingHandlers", "enable_debugging_handlers", _bool, "--enable-debugging-handlers"),
    ("enableSystemLogHandler", "enable_system_log_handler", _bool, ""),
    (
        "streamingConnectionIdleTimeout",
        "streaming_connection_idle_timeout_s",
        _duration,
        "--streaming-connection-idle-timeout",
    ),
    ("staticPodPath", "static_pod_path", _str, "--pod-manifest-path"),
    ("maxPods", "max_pods", _positive, "--max-pods"),
    ("fileCheckFrequency", "file_check_frequency_s", _duration, "--file-check-frequency"),
    ("containerLogMaxSize", "container_log_max_size_bytes", _size, "--container-log-max-size"),
    ("containerLogMaxFiles", "container_log_max_files", _positive, "--container-log-max-files"),
    ("cgroupRoot", "cgroup_root", _str, "--cgroup-root"),
    ("podCIDR", "pod_cidr", _pod_cidr, "--pod-cidr"),
    (
        "containerRuntimeEndpoint",
        "container_runtime_endpoint",
        _str,
        "--container-runtime-endpoint",
    ),
    # pykubelet extensions
    ("rootDir", "root_dir", _str, "--root-dir"),
    ("nodeName", "node_name", _str, "--node-name"),
    ("runtime", "runtime", _choice(RUNTIMES), "--runtime"),
    ("certDir", "cert_dir", _str, "--cert-dir"),
    ("auditLogPath", "audit_log_path", _str, "--audit-log-path"),
    ("auditLogMaxSize", "audit_log_max_size_mb", _positive, "--audit-log-maxsize"),
    ("auditLogMaxBackup", "audit_log_max_backup", _nonneg, "--audit-log-maxbackup"),
    ("sessionRecordingDir", "session_recording_dir", _str, "--session-recording-dir"),
    ("authentication.tokenFile", "authentication.token_file", _str, "--token-auth-file"),
    ("cniConfDir", "cni_conf_dir", _str, "--cni-conf-dir"),
    ("cniBinDir", "cni_bin_dir", _str, "--cni-bin-dir"),
)
_FLAG_ONLY: tuple[_Spec, ...] = (
    ("", "bootstrap_kubeconfig", _str, "--bootstrap-kubeconfig"),
    ("", "kubeconfig", _str, "--kubeconfig"),
    ("", "node_name", _str, "--hostname-override"),
)
_OBJECTS = {
    "authentication",
    "authentication.x509",
    "authentication.webhook",
    "authentication.anonymous",
    "authorization",
    "authorization.webhook",
}
_BY_JSON = {spec[0]: spec for spec in _FIELDS}
_PATH_FIELDS = frozenset(
    """staticPodPath tlsCertFile tlsPrivateKeyFile authentication.x509.clientCAFile
    authorization.policyFile rootDir certDir auditLogPath sessionRecordingDir
    authentication.tokenFile cniConfDir cniBinDir""".split()
)


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


def _walk(
    doc: Mapping[str, Any],
    prefix: str,
    out: dict[str, Any],
    problems: list[str],
    ignored: list[str],
) -> None:
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if not prefix and key in ("kind", "apiVersion"):
            continue
        if path in _OBJECTS:
            if not isinstance(value, dict):
                problems.append(f"{path}: expected an object, got {_type_name(value)}")
            else:
                _walk(value, path, out, problems, ignored)
        elif path in _BY_JSON:
            out[path] = value
        elif not prefix and key in IGNORED_FIELDS:
            ignored.append(path)
        else:
            problems.append(f"{path}: unknown field")


def _read_file(path: str, problems: list[str]) -> tuple[dict[str, Any], list[str]]:
    try:
        text = Path(path).read_text()
    except OSError as e:
        problems.append(f"--config: cannot read {path}: {e.strerror}")
        return {}, []
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        problems.append(f"{path}: not valid YAML or JSON: {' '.join(str(e).split())}")
        return {}, []
    if not isinstance(doc, dict):
        problems.append(f"{path}: expected a KubeletConfiguration object, got {_type_name(doc)}")
        return {}, []
    if doc.get("kind") != KIND:
        problems.append(f"kind: expected {KIND!r}, got {doc.get('kind')!r}")
    if doc.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: expected {API_VERSION!r}, got {doc.get('apiVersion')!r}")
    out: dict[str, Any] = {}
    ignored: list[str] = []
    _walk(doc, "", out, problems, ignored)
    return out, ignored


def _check_json_type(conv: Callable[[Any], Any], value: Any) -> None:
    """A file value must have its JSON type: flags may spell numbers and booleans as text."""
    if isinstance(value, str) and conv in (_bool, _int, _port, _nonneg, _positive):
        raise TypeError("expected a boolean" if conv is _bool else "expected an integer")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pykubelet run",
        description="Run the node agent. Flags override the --config file, which overrides "
        "the defaults (docs/config.md).",
    )
    p.add_argument("--config", metavar="FILE", help="a KubeletConfiguration YAML or JSON file")
    for json_path, _attr, _conv, flag in (*_FIELDS, *_FLAG_ONLY):
        if not flag:
            continue
        help_text = f"overrides {json_path}" if json_path else None
        dest = flag[2:].replace("-", "_")
        if _conv is _bool:
            p.add_argument(flag, dest=dest, metavar="BOOL", nargs="?", const="true", help=help_text)
        else:
            p.add_argument(flag, dest=dest, metavar="VALUE", help=help_text)
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
    cfg = KubeletConfiguration()
    ignored: list[str] = []
    if ns.config:
        values, ignored = _read_file(ns.config, problems)
        cfg = replace(cfg, config_file=ns.config)
        for json_path, value in values.items():
            _j, attr, conv, _f = _BY_JSON[json_path]
            try:
                _check_json_type(conv, value)
                converted = conv(value)
                if json_path in _PATH_FIELDS and converted:
                    # as upstream: relative paths in the file are relative to the file
                    converted = str(Path(ns.config).absolute().parent / converted)
                cfg = _set(cfg, attr, converted)
            except TypeError as e:
                problems.append(f"{json_path}: {e}, got {_type_name(value)}")
            except ValueError as e:
                problems.append(f"{json_path}: {e}")
    for _json_path, attr, conv, flag in (*_FIELDS, *_FLAG_ONLY):
        raw = getattr(ns, flag[2:].replace("-", "_"), None) if flag else None
        if raw is None:
            continue
        try:
            cfg = _set(cfg, attr, conv(raw))
        except (TypeError, ValueError) as e:
            problems.append(f"{flag}: {e}: {raw!r}")
    if problems:
        raise ConfigError(problems)
    return _finish(replace(cfg, ignored_fields=tuple(ignored)))


def _finish(cfg: KubeletConfiguration) -> KubeletConfiguration:
    """Fill in defaults that depend on other fields, and cross-field checks. Paths are made
    absolute (flags relative to the working directory)."""
    problems: list[str] = []
    root = str(Path(cfg.root_dir).absolute()) if cfg.root_dir else ""
    if not root:
        problems.append("rootDir: must not be empty")
    node = (cfg.node_name or socket.gethostname()).strip().lower()
    if not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", node):
        problems.append(f"nodeName: {node!r} is not a valid DNS-1123 subdomain")
    if bool(cfg.tls_cert_file) != bool(cfg.tls_private_key_file):
        problems.append("tlsCertFile: tlsCertFile and tlsPrivateKeyFile must be set together")
    if cfg.runtime == "cri" and not cfg.container_runtime_endpoint:
        problems.append("containerRuntimeEndpoint: required with runtime 'cri'")
    for name, on in (
        ("--bootstrap-kubeconfig", bool(cfg.bootstrap_kubeconfig)),
        ("rotateCertificates", cfg.rotate_certificates),
        ("serverTLSBootstrap", cfg.server_tls_bootstrap),
    ):
        if on and not cfg.kubeconfig:
            problems.append(f"{name}: needs --kubeconfig (an API server to sign certificates)")
    if problems:
        raise ConfigError(problems)
    authz = cfg.authorization
    authz = replace(authz, policy_file=_abs(authz.policy_file) or str(Path(root) / "policy.yaml"))
    x509 = replace(
        cfg.authentication.x509, client_ca_file=_abs(cfg.authentication.x509.client_ca_file)
    )
    return replace(
        cfg,
        root_dir=root,
        node_name=node,
        cert_dir=_abs(cfg.cert_dir) or str(Path(root) / "pki"),
        static_pod_path=_abs(cfg.static_pod_path),
        tls_cert_file=_abs(cfg.tls_cert_file),
        tls_private_key_file=_abs(cfg.tls_private_key_file),
        audit_log_path=_abs(cfg.audit_log_path),
        session_recording_dir=_abs(cfg.session_recording_dir),
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
    return tuple(spec[0] for spec in _FIELDS)


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
    for json_path, attr, conv, _flag in _FIELDS:
        value: Any = cfg
        for part in attr.split("."):
            value = getattr(value, part)
        if conv is _duration:
            value = format_duration(float(value))
        elif conv is _size:
            value = _size_text(int(value))
        elif isinstance(value, tuple):
            value = list(value)
        node = out
        *parents, leaf = json_path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out

"""Secure defaults, loudly: what an insecure configuration exposes, and to whom.

``SecurityPosture`` is the handful of settings that decide who can reach what (taken from the
configuration by ``posture_from_mapping`` — a KubeletConfiguration dict with pykubelet's
defaults — or built directly). ``exposures`` lists each insecure choice as an ``Exposure``;
``warning_block`` renders them as the one block the agent prints at start-up (empty when
nothing is exposed). ``pykubelet doctor`` reports the same list.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pykubelet.config import KubeletConfiguration

__all__ = [
    "Exposure",
    "SecurityPosture",
    "exposures",
    "posture_from_config",
    "posture_from_mapping",
    "warning_block",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityPosture:
    address: str = "0.0.0.0"
    port: int = 10250
    read_only_port: int = 0
    healthz_bind_address: str = "127.0.0.1"
    healthz_port: int = 10248
    anonymous_enabled: bool = False
    client_ca_file: str = ""
    token_file: str = ""
    webhook_authn_enabled: bool = False  # effective only in node mode (a kubeconfig)
    authorization_mode: str = "Policy"
    enable_debugging_handlers: bool = True
    audit_log_path: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Exposure:
    key: str  # short stable name, e.g. "anonymous-auth"
    severity: str  # "FAIL" (anyone/everyone gains access) or "WARN"
    summary: str  # what is exposed to whom
    remedy: str  # the setting that closes it


def _loopback(address: str) -> bool:
    if address in ("localhost", ""):
        return address == "localhost"
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _reach(address: str) -> str:
    if _loopback(address):
        return f"processes on this machine ({address})"
    if address in ("0.0.0.0", "::"):
        return "anyone who can reach any address of this machine"
    return f"anyone who can reach {address}"


def _world_accessible(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH))


def exposures(p: SecurityPosture) -> list[Exposure]:
    out: list[Exposure] = []
    reach = _reach(p.address)
    full = f"{p.address}:{p.port}"
    if p.anonymous_enabled:
        if p.authorization_mode == "AlwaysAllow":
            what = (
                "may list every pod (with its environment), read all logs, and run commands in "
                "every container (exec, attach, run, port-forward)"
            )
            sev = "FAIL"
        else:
            what = (
                f"is user system:anonymous (group system:unauthenticated) and gets whatever the "
                f"{p.authorization_mode} authorizer grants those names"
            )
            sev = "WARN"
        out.append(
            Exposure(
                key="anonymous-auth",
                severity=sev,
                summary=f"anonymous requests are accepted on {full}: {reach} {what}",
                remedy="set authentication.anonymous.enabled: false (--anonymous-auth=false)",
            )
        )
    if p.authorization_mode == "AlwaysAllow":
        who = "every client" if p.anonymous_enabled else "every authenticated client"
        out.append(
            Exposure(
                key="always-allow",
                severity="FAIL",
                summary=(
                    f"authorization mode AlwaysAllow on {full}: {who} (any certificate signed by "
                    "the client CA, any valid token) may do everything, including running "
                    "commands in every container"
                ),
                remedy="set authorization.mode: Policy (a policy file) or Webhook",
            )
        )
    if p.read_only_port:
        out.append(
            Exposure(
                key="read-only-port",
                severity="FAIL",
                summary=(
                    f"the read-only port {p.address}:{p.read_only_port} serves /pods (every pod "
                    f"spec, environment variables included), /stats and /metrics over plain HTTP "
                    f"with no authentication to {reach}"
                ),
                remedy="set readOnlyPort: 0 (--read-only-port=0)",
            )
        )
    has_credentials = bool(p.client_ca_file or p.token_file or p.webhook_authn_enabled)
    if not _loopback(p.address) and not has_credentials:
        who = (
            "only anonymous requests can be authenticated"
            if p.anonymous_enabled
            else "no client can authenticate (every request is 401)"
        )
        out.append(
            Exposure(
                key="no-client-credentials",
                severity="FAIL" if p.anonymous_enabled else "WARN",
                summary=(
                    f"{full} listens beyond loopback but no client CA, token file or token "
                    f"webhook is configured: {who}"
                ),
                remedy=(
                    "set authentication.x509.clientCAFile (and/or a token file), or bind "
                    "address: 127.0.0.1"
                ),
            )
        )
    if p.healthz_port and not _loopback(p.healthz_bind_address):
        out.append(
            Exposure(
                key="healthz-bind",
                severity="WARN",
                summary=(
                    f"the health port {p.healthz_bind_address}:{p.healthz_port} (no TLS, no "
                    f"authentication) is reachable by {_reach(p.healthz_bind_address)}"
                ),
                remedy="set healthzBindAddress: 127.0.0.1",
            )
        )
    if p.token_file and _world_accessible(p.token_file):
        out.append(
            Exposure(
                key="token-file-mode",
                severity="FAIL",
                summary=(
                    f"the token file {p.token_file} is readable or writable by group/others: "
                    "local users can read or add credentials"
                ),
                remedy=f"chmod 600 {p.token_file}",
            )
        )
    return out


def warning_block(found: list[Exposure]) -> str:
    """The start-up warning: one block, every exposure, what closes it. ``""`` if none."""
    if not found:
        return ""
    bar = "=" * 78
    lines = [bar, "pykubelet SECURITY WARNING: this configuration exposes the node's API", ""]
    for e in found:
        lines.append(f"  [{e.severity}] {e.key}: {e.summary}")
        lines.append(f"         fix: {e.remedy}")
    lines += ["", "  Run `pykubelet doctor --config FILE` for the full CIS-based check.", bar]
    return "\n".join(lines)


def _get(cfg: Mapping[str, Any], dotted: str, default: Any) -> Any:
    cur: Any = cfg
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return default
        cur = cur[part]
    return default if cur is None else cur


def posture_from_mapping(cfg: Mapping[str, Any], *, kubeconfig: str = "") -> SecurityPosture:
    """The posture of a KubeletConfiguration mapping (v1beta1 names) under pykubelet defaults.
    The token webhook only counts with a kubeconfig (node mode), as upstream."""
    return SecurityPosture(
        address=str(_get(cfg, "address", "0.0.0.0")),
        port=int(_get(cfg, "port", 10250)),
        read_only_port=int(_get(cfg, "readOnlyPort", 0)),
        healthz_bind_address=str(_get(cfg, "healthzBindAddress", "127.0.0.1")),
        healthz_port=int(_get(cfg, "healthzPort", 10248)),
        anonymous_enabled=bool(_get(cfg, "authentication.anonymous.enabled", False)),
        client_ca_file=str(_get(cfg, "authentication.x509.clientCAFile", "")),
        token_file=str(_get(cfg, "authentication.tokenFile", "")),
        webhook_authn_enabled=bool(kubeconfig)
        and bool(_get(cfg, "authentication.webhook.enabled", True)),
        authorization_mode=str(_get(cfg, "authorization.mode", "Policy")),
        enable_debugging_handlers=bool(_get(cfg, "enableDebuggingHandlers", True)),
        audit_log_path=str(_get(cfg, "auditLogPath", "")),
    )


def posture_from_config(cfg: KubeletConfiguration) -> SecurityPosture:
    return SecurityPosture(
        address=cfg.address,
        port=cfg.port,
        read_only_port=cfg.read_only_port,
        healthz_bind_address=cfg.healthz_bind_address,
        healthz_port=cfg.healthz_port,
        anonymous_enabled=cfg.authentication.anonymous.enabled,
        client_ca_file=cfg.authentication.x509.client_ca_file,
        token_file=cfg.authentication.token_file,
        webhook_authn_enabled=bool(cfg.kubeconfig) and cfg.authentication.webhook.enabled,
        authorization_mode=cfg.authorization.mode,
        enable_debugging_handlers=cfg.enable_debugging_handlers,
        audit_log_path=cfg.audit_log_path,
    )

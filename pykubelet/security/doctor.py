"""``pykubelet doctor``: check a configuration (and optionally a running endpoint) against the
kubelet items of the CIS Kubernetes Benchmark §4.2 and pykubelet's own exposure list.

Numbering follows CIS Kubernetes Benchmark v1.7 (as in kube-bench's ``cfg/cis-1.7/node.yaml``):
4.2.1 anonymous auth … 4.2.13 pod PIDs limit. ``protectKernelDefaults`` (4.2.6 in CIS v1.6, gone
in v1.7) is kept as ``PK-KERNEL``. pykubelet's exposure checks are ``PK-*``. With ``--url`` the
endpoint is probed as an anonymous client: does ``/pods`` answer without credentials, is the
read-only port open, does TLS accept a weak suite?

Verdicts are honest: ``PASS`` only when pykubelet enforces what the check relies on. A check
that would pass on a field pykubelet accepts but does not act on (``podPidsLimit``,
``makeIPTablesUtilChains``, ...) is ``NOT-ENFORCED``, its own verdict, decided by the same field
table that makes ``run`` warn about it. ``--output text|json|junit``. Exit status: 0 nothing
FAILed (WARN and NOT-ENFORCED may be present), 1 at least one FAIL, 2 a usage or file error.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from pykubelet.config import (
    ConfigError,
    field_status,
    format_duration,
    load_config,
    merge_drop_ins,
)
from pykubelet.security.warnings import (
    SecurityPosture,
    exposures,
    posture_from_config,
    posture_from_mapping,
)

__all__ = [
    "NOT_ENFORCED",
    "VERDICTS",
    "Finding",
    "check_config",
    "check_helper",
    "doctor_main",
    "probe_endpoint",
    "render_json",
    "render_junit",
    "render_table",
]

NOT_ENFORCED = "NOT-ENFORCED"
VERDICTS = ("PASS", NOT_ENFORCED, "WARN", "FAIL")

# CIS 4.2.12: the suites the benchmark accepts (Go / IANA names).
STRONG_SUITES = frozenset(
    {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        # TLS 1.3 suites are always strong (and not configurable).
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    }
)


# TLS 1.2 suites without ECDHE or without AEAD (RSA key exchange, CBC, 3DES), for the probe.
_WEAK_TLS12 = ":".join(
    [
        "AES128-SHA",
        "AES256-SHA",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA",
        "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-RSA-AES128-SHA256",
        "DES-CBC3-SHA",
        "@SECLEVEL=0",
    ]
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    id: str
    title: str
    status: str  # PASS | NOT-ENFORCED | WARN | FAIL
    detail: str


def _get(cfg: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = cfg
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _duration_is_zero(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, int | float):
        return value == 0
    text = str(value).strip()
    return (
        text != ""
        and all(c in "0.nsuµmh" for c in text)
        and not any(c.isdigit() and c != "0" for c in text)
    )


def _client_rotation(cfg: Mapping[str, Any], kubeconfig: str) -> bool | None:
    """``rotateCertificates`` as enforced: rotation happens only in node mode, when the
    kubeconfig's client certificate is the rotating ``<certDir>/kubelet-client-current.pem``
    (written by the TLS bootstrap); otherwise it is effectively false."""
    if not kubeconfig:
        return None  # standalone: no client certificate to rotate
    if _get(cfg, "rotateCertificates") is not True:
        return False
    if _get(cfg, "_bootstrapKubeconfig"):
        return True
    from pykubelet.auth.kubeconfig import load_kubeconfig  # lazily: node mode only
    from pykubelet.core.errors import InvalidInput

    try:
        named = load_kubeconfig(kubeconfig).cert_file
    except InvalidInput:
        return False
    cert_dir = str(_get(cfg, "certDir") or "")
    return bool(cert_dir) and named == str(Path(cert_dir) / "kubelet-client-current.pem")


def _serving_rotation(cfg: Mapping[str, Any], kubeconfig: str) -> bool | None:
    """The serving certificate rotates only with ``serverTLSBootstrap`` in node mode."""
    if _get(cfg, "featureGates.RotateKubeletServerCertificate") is False:
        return False
    if not kubeconfig:
        return None  # standalone: files reloaded when changed, nothing asks the cluster
    return None if _get(cfg, "serverTLSBootstrap") is True else False


def check_config(
    cfg: Mapping[str, Any], *, kubeconfig: str = "", posture: SecurityPosture | None = None
) -> list[Finding]:
    """Every CIS §4.2 item and exposure for a KubeletConfiguration mapping (pykubelet defaults
    apply to fields it leaves out). ``posture`` (the effective configuration, flags included)
    overrides what the mapping alone says about authentication, authorization and ports."""
    p = posture or posture_from_mapping(cfg, kubeconfig=kubeconfig)
    out: list[Finding] = []

    def add(
        id_: str, title: str, ok: bool, detail: str, *, fail: str = "FAIL", needs: str = ""
    ) -> None:
        """``needs``: the field the check relies on; PASS only if pykubelet enforces it."""
        status = "PASS" if ok else fail
        if status == "PASS" and needs and field_status(needs) != "implemented":
            status = NOT_ENFORCED
            detail += f" (accepted, not enforced: pykubelet does not act on {needs})"
        out.append(Finding(id=id_, title=title, status=status, detail=detail))

    add(
        "4.2.1",
        "anonymous-auth is false",
        not p.anonymous_enabled,
        "authentication.anonymous.enabled = " + str(p.anonymous_enabled).lower(),
    )
    add(
        "4.2.2",
        "authorization-mode is not AlwaysAllow",
        p.authorization_mode != "AlwaysAllow",
        f"authorization.mode = {p.authorization_mode}",
    )
    if p.client_ca_file:
        add("4.2.3", "client-ca-file is set", True, f"clientCAFile = {p.client_ca_file}")
    else:
        add(
            "4.2.3",
            "client-ca-file is set",
            False,
            "no authentication.x509.clientCAFile"
            + (" (a token file is set)" if p.token_file else ""),
            fail="WARN" if p.token_file else "FAIL",
        )
    add(
        "4.2.4",
        "read-only-port is 0",
        p.read_only_port == 0,
        f"readOnlyPort = {p.read_only_port}",
    )
    idle = _get(cfg, "streamingConnectionIdleTimeout")
    if isinstance(idle, str) and _duration_is_zero(idle):
        idle = None  # a zero in a file is upstream's "unset": the 4h default applies
    add(
        "4.2.5",
        "streaming-connection-idle-timeout is not 0",
        not _duration_is_zero(idle),
        "streamingConnectionIdleTimeout = "
        + (
            "4h (default)"
            if idle is None
            else format_duration(float(idle))
            if isinstance(idle, int | float)
            else str(idle)
        ),
    )
    chains = _get(cfg, "makeIPTablesUtilChains")
    add(
        "4.2.6",
        "make-iptables-util-chains is true",
        chains is not False,
        "makeIPTablesUtilChains = "
        + ("false" if chains is False else "true (default)" if chains is None else "true"),
        fail="WARN",
        needs="makeIPTablesUtilChains",
    )
    node_name = _get(cfg, "nodeName")
    add(
        "4.2.7",
        "hostname-override is not set",
        not node_name,
        f"nodeName = {node_name}" if node_name else "node name is the hostname",
        fail="WARN",
    )
    qps = _get(cfg, "eventRecordQPS")
    add(
        "4.2.8",
        "eventRecordQPS ensures appropriate event capture",
        qps is None or (isinstance(qps, int | float) and qps >= 0),
        f"eventRecordQPS = {qps if qps is not None else '5 (default)'}",
        fail="WARN",
        needs="eventRecordQPS",
    )
    cert, key = _get(cfg, "tlsCertFile"), _get(cfg, "tlsPrivateKeyFile")
    if bool(cert) != bool(key):
        add("4.2.9", "tls-cert-file and tls-private-key-file are set", False, "only one is set")
    else:
        add(
            "4.2.9",
            "tls-cert-file and tls-private-key-file are set",
            bool(cert),
            f"tlsCertFile = {cert}" if cert else "self-signed certificate in the cert dir",
            fail="WARN",
        )
    rotate = _client_rotation(cfg, kubeconfig)
    add(
        "4.2.10",
        "rotate-certificates is not false",
        rotate is not False or not kubeconfig,
        "rotateCertificates = false" if rotate is False else "rotateCertificates not set to false",
        needs="rotateCertificates",
    )
    gate = _serving_rotation(cfg, kubeconfig)
    add(
        "4.2.11",
        "RotateKubeletServerCertificate is true",
        gate is not False,
        "featureGates.RotateKubeletServerCertificate = "
        + ("false" if gate is False else "true (default)"),
        # node mode: serverTLSBootstrap makes the serving certificate rotate; standalone, the
        # feature gate is all there is, and pykubelet does not act on feature gates
        needs="serverTLSBootstrap" if kubeconfig else "featureGates",
    )
    suites = _get(cfg, "tlsCipherSuites") or []
    min_version = _get(cfg, "tlsMinVersion") or ""
    weak = [s for s in suites if s not in STRONG_SUITES]
    old_tls = min_version in ("VersionTLS10", "VersionTLS11")
    add(
        "4.2.12",
        "only strong cryptographic ciphers",
        not weak and not old_tls,
        (
            f"weak suites: {', '.join(weak)}"
            if weak
            else f"tlsMinVersion = {min_version}"
            if old_tls
            else "configured suites are all strong"
            if suites
            else "pykubelet default: TLS 1.2+ with ECDHE and AEAD only"
        ),
    )
    pids = _get(cfg, "podPidsLimit")
    add(
        "4.2.13",
        "a limit is set on pod PIDs",
        isinstance(pids, int) and pids > 0,
        f"podPidsLimit = {pids}" if pids is not None else "podPidsLimit not set",
        fail="WARN",
        needs="podPidsLimit",
    )
    kernel = _get(cfg, "protectKernelDefaults")
    add(
        "PK-KERNEL",
        "protectKernelDefaults is true (CIS v1.6 4.2.6)",
        kernel is True,
        "protectKernelDefaults = "
        + (str(kernel).lower() if kernel is not None else "false (default)"),
        fail="WARN",
        needs="protectKernelDefaults",
    )
    add(
        "PK-AUDIT",
        "an audit log is written",
        bool(p.audit_log_path),
        f"auditLogPath = {p.audit_log_path}" if p.audit_log_path else "no auditLogPath",
        fail="WARN",
    )
    for e in exposures(p):
        out.append(
            Finding(id=f"PK-{e.key.upper()}", title=e.key, status=e.severity, detail=e.summary)
        )
    return out


def _http_get(
    url: str, *, timeout: float, context: ssl.SSLContext | None = None
) -> tuple[int, bytes]:
    u = urllib.parse.urlsplit(url)
    host = u.hostname or "127.0.0.1"
    conn: http.client.HTTPConnection
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(host, u.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, u.port, timeout=timeout)
    try:
        conn.request("GET", (u.path or "/") + ("?" + u.query if u.query else ""))
        resp = conn.getresponse()
        return resp.status, resp.read(4096)
    finally:
        conn.close()


def _insecure_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def probe_endpoint(url: str, *, read_only_url: str = "", timeout: float = 5.0) -> list[Finding]:
    """Probe a running kubelet as an anonymous client (no certificate, no token)."""
    out: list[Finding] = []

    def add(id_: str, title: str, status: str, detail: str) -> None:
        out.append(Finding(id=id_, title=title, status=status, detail=detail))

    base = url.rstrip("/")
    try:
        status, _ = _http_get(base + "/pods", timeout=timeout, context=_insecure_context())
    except (OSError, http.client.HTTPException) as exc:
        add("PROBE-PODS", "anonymous GET /pods", "WARN", f"cannot reach {base}: {exc}")
    else:
        verdict = {401: "PASS", 403: "WARN"}.get(status, "FAIL" if status == 200 else "WARN")
        detail = {
            200: "answered 200 without credentials: anyone can list pods",
            401: "answered 401 Unauthorized",
            403: "answered 403: anonymous requests are authenticated (then denied)",
        }.get(status, f"answered {status}")
        add("PROBE-PODS", "anonymous GET /pods", verdict, detail)
    u = urllib.parse.urlsplit(base)
    if u.scheme == "https":
        weak = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        weak.check_hostname = False
        weak.verify_mode = ssl.CERT_NONE
        weak.maximum_version = ssl.TLSVersion.TLSv1_2
        weak.set_ciphers(_WEAK_TLS12)
        try:
            _http_get(base + "/healthz", timeout=timeout, context=weak)
        except ssl.SSLError:
            add(
                "PROBE-TLS",
                "weak TLS suites refused",
                "PASS",
                "handshake with RSA key exchange / CBC suites refused",
            )
        except (OSError, http.client.HTTPException) as exc:
            add("PROBE-TLS", "weak TLS suites refused", "WARN", f"probe failed: {exc}")
        else:
            add(
                "PROBE-TLS",
                "weak TLS suites refused",
                "FAIL",
                "accepted a TLS 1.2 handshake without ECDHE/AEAD",
            )
    ro = read_only_url or f"http://{u.hostname}:10255"
    try:
        status, _ = _http_get(ro.rstrip("/") + "/pods", timeout=timeout)
    except (OSError, http.client.HTTPException):
        add("PROBE-RO", "read-only port closed", "PASS", f"{ro} does not answer")
    else:
        add(
            "PROBE-RO",
            "read-only port closed",
            "FAIL" if status == 200 else "WARN",
            f"{ro}/pods answered {status} over plain HTTP",
        )
    return out


def _counts(findings: Sequence[Finding]) -> dict[str, int]:
    return {v: sum(f.status == v for f in findings) for v in VERDICTS}


def render_table(findings: Sequence[Finding]) -> str:
    w_status = max(len(v) for v in VERDICTS)
    w_id = max([len("ID")] + [len(f.id) for f in findings])
    w_title = max([len("CHECK")] + [len(f.title) for f in findings])
    lines = [f"{'STATUS':<{w_status}}  {'ID':<{w_id}}  {'CHECK':<{w_title}}  DETAIL"]
    for f in findings:
        lines.append(f"{f.status:<{w_status}}  {f.id:<{w_id}}  {f.title:<{w_title}}  {f.detail}")
    c = _counts(findings)
    lines.append(
        f"\n{c['PASS']} passed, {c[NOT_ENFORCED]} accepted but not enforced, "
        f"{c['WARN']} warnings, {c['FAIL']} failed"
    )
    return "\n".join(lines)


def render_json(findings: Sequence[Finding]) -> str:
    doc = {
        "findings": [
            {"id": f.id, "title": f.title, "status": f.status, "detail": f.detail} for f in findings
        ],
        "summary": _counts(findings),
    }
    return json.dumps(doc, indent=2)


def render_junit(findings: Sequence[Finding]) -> str:
    """JUnit XML for CI dashboards: FAIL is a failure, NOT-ENFORCED and WARN are skipped with
    the reason (neither is a pass)."""
    c = _counts(findings)
    suite = ET.Element(
        "testsuite",
        name="pykubelet doctor",
        tests=str(len(findings)),
        failures=str(c["FAIL"]),
        skipped=str(c["WARN"] + c[NOT_ENFORCED]),
        errors="0",
    )
    for f in findings:
        case = ET.SubElement(
            suite, "testcase", classname="pykubelet.doctor", name=f"{f.id} {f.title}"
        )
        if f.status == "FAIL":
            ET.SubElement(case, "failure", message=f.detail, type="FAIL").text = f.detail
        elif f.status != "PASS":
            ET.SubElement(case, "skipped", message=f"{f.status}: {f.detail}")
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


_RENDER: dict[str, Callable[[Sequence[Finding]], str]] = {
    "text": render_table,
    "json": render_json,
    "junit": render_junit,
}


def check_helper() -> Finding:
    """The compiled container helper shipped in the package: present and trusted?"""
    from pykubelet.runtime.process.shimbin import native_helper_problem, packaged_shim

    problem = native_helper_problem()
    title = "the packaged container helper is trusted"
    if problem is None:
        return Finding(
            id="PK-HELPER",
            title=title,
            status="PASS",
            detail=f"{packaged_shim()}: owned by root, not writable by group/others",
        )
    return Finding(
        id="PK-HELPER",
        title=title,
        status="WARN",
        detail=f"{problem}; containers use the Python helper (about 10 MiB each)",
    )


def _load_yaml(path: str) -> Mapping[str, Any]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a KubeletConfiguration must be a mapping")
    return data


def doctor_main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    probe: Callable[..., list[Finding]] = probe_endpoint,
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = argparse.ArgumentParser(
        prog="pykubelet doctor",
        description="Check a pykubelet configuration against CIS Kubernetes Benchmark §4.2. "
        "Any `pykubelet run` flag (e.g. --client-ca-file) may follow; it is applied as run does. "
        "Verdicts: PASS (enforced), NOT-ENFORCED (accepted, not acted on), WARN, FAIL. "
        "Exit status: 0 no FAIL, 1 at least one FAIL, 2 usage or configuration error.",
    )
    parser.add_argument("--config", help="KubeletConfiguration YAML (default: built-in defaults)")
    parser.add_argument("--config-dir", default="", help="drop-ins merged over --config, as run")
    parser.add_argument("--kubeconfig", default="", help="node mode (enables webhook checks)")
    parser.add_argument("--url", help="probe a running endpoint, e.g. https://127.0.0.1:10250")
    parser.add_argument("--read-only-url", default="", help="read-only port to probe")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument(
        "--output", choices=tuple(_RENDER), default="text", help="text (default), json or junit"
    )
    try:
        args, run_flags = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    try:
        cfg = _load_yaml(args.config) if args.config else {}
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"pykubelet doctor: cannot read --config: {exc}", file=err)
        return 2
    # The effective configuration, exactly as `pykubelet run` would load it.
    run_argv = [*(["--config", args.config] if args.config else []), *run_flags]
    if args.config_dir:
        run_argv += ["--config-dir", args.config_dir]
    if args.kubeconfig:
        run_argv += ["--kubeconfig", args.kubeconfig]
    try:
        effective = load_config(run_argv)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"pykubelet doctor: invalid configuration: {line}", file=err)
        return 2
    except SystemExit:  # argparse rejected a flag (it printed why)
        return 2
    if args.config_dir:
        cfg = merge_drop_ins(cfg, args.config_dir)  # valid: load_config accepted it
    # Fields that flags may set too: take them from the effective configuration.
    overlay: dict[str, Any] = {
        "tlsCertFile": effective.tls_cert_file,
        "tlsPrivateKeyFile": effective.tls_private_key_file,
        "tlsCipherSuites": list(effective.tls_cipher_suites),
        "tlsMinVersion": effective.tls_min_version,
        "streamingConnectionIdleTimeout": effective.streaming_connection_idle_timeout_s,
        "rotateCertificates": effective.rotate_certificates,
        "serverTLSBootstrap": effective.server_tls_bootstrap,
        "certDir": effective.cert_dir,
        "_bootstrapKubeconfig": effective.bootstrap_kubeconfig,
    }
    cfg = {**cfg, **{k: v for k, v in overlay.items() if v or v == 0}}
    posture = posture_from_config(effective)
    findings = check_config(cfg, kubeconfig=args.kubeconfig, posture=posture)
    if effective.runtime == "process":
        findings.append(check_helper())
    if args.url:
        findings += probe(args.url, read_only_url=args.read_only_url, timeout=args.timeout)
    print(_RENDER[args.output](findings), file=out)
    return 1 if any(f.status == "FAIL" for f in findings) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(doctor_main())

"""``probe URL``: which paths of one kubelet answer anonymously, and which need what.

One host per URL, given explicitly: never a range or a network. Each path of the shipped
description is asked once without credentials (and once with them, when given) using requests
that change nothing: a GET where the path has one (streaming paths then answer without an
upgrade), otherwise a POST for a pod that does not exist. The REQUIRES column is the
description's ``x-kubernetes-authorization``.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pykubelet.client.config import Connection
from pykubelet.client.errors import UsageError
from pykubelet.client.tables import format_table
from pykubelet.client.transport import KubeletSession

__all__ = ["ProbeRow", "check_probe_url", "probe", "render_probe"]

_PLACEHOLDERS = {
    "{namespace}": "pykubelet-probe",
    "{pod}": "pykubelet-probe-no-such-pod",
    "{container}": "probe",
    "{uid}": "00000000-0000-0000-0000-000000000000",
    "{path}": "",
}


def check_probe_url(url: str) -> str:
    """The URL as a server base (scheme://host:port); refuses anything that names more than
    one host (CIDR ranges, wildcards, lists) or carries a path, query or credentials."""
    parts = urllib.parse.urlsplit(url if "://" in url else "https://" + url)
    host = parts.hostname or ""
    network = any(c in host for c in "*,") or parts.path.strip("/").isdigit()
    try:
        network = network or ipaddress.ip_network(host, strict=False).num_addresses != 1
    except ValueError:
        pass  # a host name
    if network:
        raise UsageError(f"probe {url!r}: one host per URL; networks are never scanned")
    if parts.scheme not in ("https", "http"):
        raise UsageError(f"probe {url!r}: the URL must be https:// (10250) or http:// (10255)")
    if not host or parts.path not in ("", "/") or parts.query or parts.username:
        raise UsageError(f"probe {url!r}: give the kubelet's base URL only (scheme://host:port)")
    port = parts.port or (10250 if parts.scheme == "https" else 10255)
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}:{port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeRow:
    path: str
    method: str
    anonymous: str
    authenticated: str | None
    requires: str


def _requires(op: Mapping[str, Any], tls: bool) -> str:
    if not tls:
        return "none (no authentication on this port)"
    a = op["x-kubernetes-authorization"]
    return f"{a['verb']} {a['resource']}/{'|'.join(a['subresources'])}"


def _verdict(status: int, body: bytes) -> str:
    if status == 401:
        return "401 needs authentication"
    if status == 403:
        return "403 forbidden"
    if status == 404 and body == b"404 page not found\n":
        return "not served"
    if status == 405 and body.startswith((b"Debug endpoints are disabled", b"logs endpoint")):
        return "disabled"
    return f"{status} answers"


def _targets(doc: Mapping[str, Any], tls: bool) -> list[tuple[str, str, str, Mapping[str, Any]]]:
    """(described path, concrete path, method, operation) for each path the port serves."""
    out = []
    for path, item in doc["paths"].items():
        ports = set(item["x-kubelet-ports"])
        if not (ports & ({10250} if tls else {10255, 10248})):
            continue
        method = "get" if "get" in item else next(m for m in ("post", "put") if m in item)
        concrete = path
        for placeholder, value in _PLACEHOLDERS.items():
            concrete = concrete.replace(placeholder, value)
        out.append((path, concrete, method.upper(), item[method]))
    return out


async def _ask(conn: Connection, targets: Sequence[tuple[str, str, str, Any]]) -> list[str]:
    verdicts = []
    async with KubeletSession(conn) as s:
        for _, path, method, _ in targets:
            reply = await s.request(method, path, check=False)
            verdicts.append(_verdict(reply.status, reply.body))
    return verdicts


async def probe(
    base: str, conn: Connection, doc: Mapping[str, Any], *, with_credentials: bool
) -> list[ProbeRow]:
    """Ask every described path of ``base`` anonymously (and with ``conn``'s credentials)."""
    tls = base.startswith("https://")
    targets = _targets(doc, tls)
    anonymous = replace(conn, server=base, client_cert_pem=None, client_key_pem=None, token="")
    anon = await _ask(anonymous, targets)
    authed: list[str | None] = [None] * len(targets)
    if with_credentials:
        authed = list(await _ask(replace(conn, server=base), targets))
    return [
        ProbeRow(
            path=path,
            method=method,
            anonymous=a,
            authenticated=b,
            requires=_requires(op, tls),
        )
        for (path, _, method, op), a, b in zip(targets, anon, authed, strict=True)
    ]


def render_probe(base: str, rows: Sequence[ProbeRow], who: str | None) -> str:
    header = ["PATH", "METHOD", "ANONYMOUS", *([who.upper()] if who else []), "REQUIRES"]
    body = [
        [r.path, r.method, r.anonymous, *([r.authenticated or ""] if who else []), r.requires]
        for r in rows
    ]
    open_paths = sum(1 for r in rows if r.anonymous.endswith("answers"))
    summary = f"{base}: {open_paths} of {len(rows)} paths answer anonymously\n"
    return format_table(header, body) + summary

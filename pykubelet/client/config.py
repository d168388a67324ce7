"""kubectl's connection options (``--kubeconfig``, ``--server``, ``--certificate-authority``,
``--client-certificate``, ``--client-key``, ``--token``, ``--insecure-skip-tls-verify``) resolved
into one ``Connection``: flags win over the kubeconfig's current context, as in kubectl."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pykubelet.client.errors import ConfigError, UsageError

__all__ = ["Connection", "ConnectionFlags", "resolve_connection"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionFlags:
    """The flags as given (empty string / None = not given)."""

    kubeconfig: str = ""
    context: str = ""
    server: str = ""
    certificate_authority: str = ""
    client_certificate: str = ""
    client_key: str = ""
    token: str = ""
    insecure_skip_tls_verify: bool | None = None
    namespace: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """Where the kubelet is and how to prove who we are. PEM material is held as bytes so
    kubeconfig ``*-data`` fields and files are handled alike."""

    server: str
    ca_pem: bytes | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str = ""
    insecure: bool = False
    namespace: str = "default"

    @property
    def is_tls(self) -> bool:
        return self.server.startswith("https://")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``https://`` servers (None for plain http, e.g. 10255)."""
        if not self.is_tls:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_pem is not None:
            ctx.load_verify_locations(cadata=self.ca_pem.decode("ascii", "replace"))
        if self.client_cert_pem is not None:
            if self.client_key_pem is None:
                raise ConfigError("a client certificate needs a client key (--client-key)")
            _load_chain(ctx, self.client_cert_pem, self.client_key_pem)
        return ctx


def _load_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl loads chains from files only: a private temporary file, removed at once.
    with tempfile.TemporaryDirectory(prefix="pykubelet-client-") as d:
        cert_file, key_file = Path(d, "c.pem"), Path(d, "k.pem")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        cert_file.write_bytes(cert)
        try:
            ctx.load_cert_chain(str(cert_file), str(key_file))
        except (ssl.SSLError, ValueError) as e:
            raise ConfigError(f"client certificate and key do not load: {e}") from None


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}") from None


def _kubeconfig_path(flag: str) -> Path | None:
    if flag:
        return Path(flag).expanduser()
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    default = Path("~/.kube/config").expanduser()
    return default if default.exists() else None


def _named(items: Any, name: str, kind: str, source: Path) -> dict[str, Any]:
    for entry in items or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(kind, {})
            return value if isinstance(value, dict) else {}
    raise ConfigError(f"{source}: {kind} {name!r} not found")


def _from_kubeconfig(path: Path, context_name: str, *, required: bool) -> dict[str, Any]:
    """The current (or named) context's cluster and user, relative paths made absolute."""
    raw = _read(str(path), "kubeconfig")
    try:
        doc = yaml.safe_load(raw) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not YAML: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: not a kubeconfig")
    name = context_name or doc.get("current-context", "")
    if not name and not required:
        return {}
    if not name:
        raise ConfigError(f"{path}: no current-context (use --context or --server)")
    context = _named(doc.get("contexts"), name, "context", path)
    cluster = _named(doc.get("clusters"), context.get("cluster", ""), "cluster", path)
    user = (
        _named(doc.get("users"), context.get("user", ""), "user", path)
        if context.get("user")
        else {}
    )
    base = path.parent
    out: dict[str, Any] = {
        "server": cluster.get("server", ""),
        "insecure": bool(cluster.get("insecure-skip-tls-verify", False)),
        "namespace": context.get("namespace", ""),
        "token": user.get("token", ""),
    }
    for key, data_key, file_key in (
        ("ca", "certificate-authority-data", "certificate-authority"),
        ("cert", "client-certificate-data", "client-certificate"),
        ("key", "client-key-data", "client-key"),
    ):
        holder = cluster if key == "ca" else user
        if holder.get(data_key):
            try:
                out[key] = base64.b64decode(holder[data_key], validate=True)
            except (ValueError, TypeError):
                raise ConfigError(f"{path}: {data_key} is not base64") from None
        elif holder.get(file_key):
            out[key] = _read(str(base / Path(holder[file_key]).expanduser()), file_key)
    if user.get("tokenFile") and not out["token"]:
        out["token"] = _read(str(base / user["tokenFile"]), "tokenFile").decode().strip()
    return out


def resolve_connection(flags: ConnectionFlags) -> Connection:
    """Flags over the kubeconfig; raises ``ConfigError``/``UsageError`` naming the problem."""
    kc: dict[str, Any] = {}
    path = _kubeconfig_path(flags.kubeconfig)
    if path is not None and (flags.kubeconfig or path.exists()):
        kc = _from_kubeconfig(path, flags.context, required=not flags.server)
    server = flags.server or kc.get("server", "")
    if not server:
        raise UsageError("no kubelet to talk to: give --server https://HOST:10250 or a kubeconfig")
    if "://" not in server:
        server = "https://" + server
    if not server.startswith(("https://", "http://")):
        raise UsageError(f"--server {server!r}: must be an https:// or http:// URL")
    ca = (
        _read(flags.certificate_authority, "--certificate-authority")
        if (flags.certificate_authority)
        else kc.get("ca")
    )
    cert = (
        _read(flags.client_certificate, "--client-certificate")
        if (flags.client_certificate)
        else kc.get("cert")
    )
    key = _read(flags.client_key, "--client-key") if flags.client_key else kc.get("key")
    insecure = (
        flags.insecure_skip_tls_verify
        if flags.insecure_skip_tls_verify is not None
        else kc.get("insecure", False)
    )
    if insecure and flags.certificate_authority:
        raise UsageError(
            "specifying a root certificates file with the insecure flag is not allowed"
        )
    return Connection(
        server=server.rstrip("/"),
        ca_pem=ca,
        client_cert_pem=cert,
        client_key_pem=key,
        token=flags.token or kc.get("token", ""),
        insecure=bool(insecure),
        namespace=flags.namespace or kc.get("namespace", "") or "default",
    )

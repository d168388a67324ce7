"""The node's kubeconfig as the webhook client's credentials: server, CA, client certificate or
token — and a ``ReviewPoster`` that follows the files when they change.

Only what a kubelet's kubeconfig holds is read (current context → one cluster, one user with
``client-certificate[-data]`` / ``client-key[-data]``, ``token`` / ``tokenFile``); relative paths
are relative to the kubeconfig's directory, as client-go resolves them. ``exec`` and
``auth-provider`` users are refused by name. ``KubeconfigReviewPoster`` re-reads the kubeconfig
and the files it names when one of them changes (the TLS bootstrap writes the kubeconfig,
certificate rotation replaces ``kubelet-client-current.pem``), so no restart is needed.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pykubelet.auth.webhook_client import HTTPSReviewPoster
from pykubelet.core.errors import InvalidInput

__all__ = ["Kubeconfig", "KubeconfigReviewPoster", "load_kubeconfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Kubeconfig:
    """The parts of a kubeconfig's current context a kubelet uses. ``*_data`` are PEM bytes
    (inline ``-data`` fields); file fields are absolute paths."""

    path: str
    server: str
    ca_file: str = ""
    ca_data: bytes = b""
    insecure_skip_tls_verify: bool = False
    cert_file: str = ""
    cert_data: bytes = b""
    key_file: str = ""
    key_data: bytes = b""
    token: str = ""
    token_file: str = ""

    def files(self) -> tuple[str, ...]:
        """Every file these credentials come from (to notice a change)."""
        named = (self.ca_file, self.cert_file, self.key_file, self.token_file)
        return (self.path, *(f for f in named if f))

    def bearer_token(self) -> str:
        if self.token:
            return self.token
        if self.token_file:
            try:
                return Path(self.token_file).read_text().strip()
            except OSError as exc:
                raise InvalidInput(f"{self.path}: tokenFile: {exc}", field="kubeconfig") from exc
        return ""

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the cluster's CA and presenting the user's certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        try:
            if self.ca_file:
                ctx.load_verify_locations(cafile=self.ca_file)
            if self.ca_data:
                ctx.load_verify_locations(cadata=self.ca_data.decode())
            if self.cert_file or self.cert_data:
                _load_chain(ctx, self)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise InvalidInput(
                f"{self.path}: cannot load the certificates it names: {exc}", field="kubeconfig"
            ) from exc
        return ctx


def _load_chain(ctx: ssl.SSLContext, kc: Kubeconfig) -> None:
    """``load_cert_chain`` reads files only: inline data goes through a private temp dir."""
    if not kc.cert_data and not kc.key_data:
        ctx.load_cert_chain(kc.cert_file, kc.key_file or None)
        return
    with tempfile.TemporaryDirectory(prefix="pykubelet-kc-") as d:
        cert, key = kc.cert_file, kc.key_file
        if kc.cert_data:
            cert = _private_file(d, "cert.pem", kc.cert_data)
        if kc.key_data:
            key = _private_file(d, "key.pem", kc.key_data)
        ctx.load_cert_chain(cert, key or None)


def _private_file(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _named(doc: Mapping[str, Any], kind: str, name: str, path: str) -> Mapping[str, Any]:
    for entry in doc.get(kind) or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(kind[:-1])
            if isinstance(body, dict):
                return body
    raise InvalidInput(f"{path}: no {kind[:-1]} named {name!r}", field="kubeconfig")


def _string(body: Mapping[str, Any], key: str, path: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise InvalidInput(f"{path}: {key} must be a string", field="kubeconfig")
    return value


def _data(body: Mapping[str, Any], key: str, path: str) -> bytes:
    value = _string(body, key, path)
    try:
        return base64.b64decode(value, validate=True) if value else b""
    except ValueError as exc:
        raise InvalidInput(f"{path}: {key} is not base64", field="kubeconfig") from exc


def load_kubeconfig(path: str) -> Kubeconfig:
    """Parse ``path``; ``InvalidInput`` naming the file and the field when it cannot be used."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read kubeconfig {path}: {exc}", field="kubeconfig") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path}: not a kubeconfig", field="kubeconfig")
    ctx_name = _string(doc, "current-context", path)
    contexts = doc.get("contexts") or []
    if not ctx_name and len(contexts) == 1 and isinstance(contexts[0], dict):
        ctx_name = str(contexts[0].get("name", ""))
    context = _named(doc, "contexts", ctx_name, path)
    cluster = _named(doc, "clusters", _string(context, "cluster", path), path)
    user = _named(doc, "users", _string(context, "user", path), path) if context.get("user") else {}
    for unsupported in ("exec", "auth-provider", "username"):
        if unsupported in user:
            raise InvalidInput(
                f"{path}: user credentials of kind {unsupported!r} are not supported "
                "(use a client certificate or a token)",
                field="kubeconfig",
            )
    base = Path(path).resolve().parent

    def file(body: Mapping[str, Any], key: str) -> str:
        value = _string(body, key, path)
        return str(base / value) if value else ""

    server = _string(cluster, "server", path)
    if not server.startswith(("https://", "http://")):
        raise InvalidInput(f"{path}: cluster server must be an https:// URL", field="kubeconfig")
    return Kubeconfig(
        path=str(Path(path).resolve()),
        server=server,
        ca_file=file(cluster, "certificate-authority"),
        ca_data=_data(cluster, "certificate-authority-data", path),
        insecure_skip_tls_verify=cluster.get("insecure-skip-tls-verify") is True,
        cert_file=file(user, "client-certificate"),
        cert_data=_data(user, "client-certificate-data", path),
        key_file=file(user, "client-key"),
        key_data=_data(user, "client-key-data", path),
        token=_string(user, "token", path),
        token_file=file(user, "tokenFile"),
    )


def _stamps(files: tuple[str, ...]) -> tuple[tuple[int, int, int] | None, ...]:
    out: list[tuple[int, int, int] | None] = []
    for f in files:
        try:
            st = os.stat(f)
        except OSError:
            out.append(None)
            continue
        out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


class KubeconfigReviewPoster:
    """A ``ReviewPoster`` with the kubeconfig's credentials, rebuilt when a file it reads
    changes. A kubeconfig that cannot be loaded at construction raises ``InvalidInput``; one
    broken later keeps the last working credentials (the error is raised from ``reload``)."""

    def __init__(self, path: str, *, timeout_s: float = 10.0) -> None:
        self._path = path
        self._timeout_s = timeout_s
        self._files: tuple[str, ...] = ()
        self._stamps: tuple[tuple[int, int, int] | None, ...] = ()
        self._poster = self._build()

    def _build(self) -> HTTPSReviewPoster:
        kc = load_kubeconfig(self._path)
        files = kc.files()
        stamps = _stamps(files)
        poster = HTTPSReviewPoster(
            kc.server,
            ssl_context=kc.ssl_context(),
            bearer_token=kc.bearer_token(),
            timeout=self._timeout_s,
        )
        self._files, self._stamps = files, stamps
        return poster

    def _current(self) -> HTTPSReviewPoster:
        if _stamps(self._files) != self._stamps:
            try:
                self._poster = self._build()
            except InvalidInput:
                pass  # half-written files: keep the working credentials, retried next request
        return self._poster

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return await self._current().post_json(path, body)

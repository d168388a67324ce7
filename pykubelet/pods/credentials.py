"""Registry credentials from docker config files, matched as the Go kubelet's keyring does.

A docker config (``config.json`` ``{"auths": {KEY: ENTRY}}``, or the legacy ``.dockercfg``
``{KEY: ENTRY}``) maps keys to credentials. A key is a host with optional port and path
(``https://``, ``/v1/`` and ``/v2/`` ignored); its host may use globs per dot-separated part
(``*.example.com``). A key matches an image when the host parts match one for one, the ports are
equal and the key's path is a prefix of the image's repository path. Every matching entry is
returned, most specific key first (reverse-sorted, as upstream); for Docker Hub images an
``index.docker.io`` key is the fallback. Pod secrets' keyrings go before the node's.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pykubelet.core.errors import InvalidInput
from pykubelet.registry import parse_ref
from pykubelet.runtime.types import RegistryAuth

__all__ = ["DockerConfigFiles", "Keyring", "load_docker_config_file"]

log = logging.getLogger(__name__)

_DOCKER_HUB = "index.docker.io"


@dataclass(frozen=True, slots=True)
class _Key:
    host_parts: tuple[str, ...]
    port: str
    path: str

    @classmethod
    def parse(cls, text: str) -> _Key:
        rest = text.split("://", 1)[-1]
        hostport, _, path = rest.partition("/")
        path = "/" + path if path else ""
        if path.startswith(("/v1/", "/v2/")):
            path = path[3:]
        if path == "/":
            path = ""
        host, _, port = hostport.partition(":")
        return cls(tuple(host.lower().split(".")), port, path.rstrip("/"))

    def matches(self, target: _Key) -> bool:
        if len(self.host_parts) != len(target.host_parts) or self.port != target.port:
            return False
        if not all(
            fnmatch.fnmatchcase(t, g)
            for g, t in zip(self.host_parts, target.host_parts, strict=True)
        ):
            return False
        return target.path.startswith(self.path)


class Keyring:
    """An ordered set of (key, credentials); ``lookup`` says which to try for an image."""

    def __init__(self, entries: Sequence[tuple[str, RegistryAuth]] = ()) -> None:
        self._entries = tuple(entries)
        index = sorted({k for k, _ in self._entries}, reverse=True)
        self._index = [(k, _Key.parse(k)) for k in index]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __add__(self, other: Keyring) -> Keyring:
        """A union that keeps the order: this keyring's matches come first."""
        return _Union(self, other)

    @classmethod
    def from_docker_config(cls, data: bytes | str, source: str) -> Keyring:
        try:
            doc = json.loads(data)
        except ValueError as e:
            raise InvalidInput(f"{source}: not JSON: {e}") from e
        if not isinstance(doc, dict):
            raise InvalidInput(f"{source}: expected a JSON object")
        auths = doc.get("auths", doc) if "auths" in doc else doc
        if not isinstance(auths, dict):
            raise InvalidInput(f"{source}: auths: expected an object")
        entries = []
        for key, entry in auths.items():
            where = f"{source}: auths[{key!r}]"
            if not isinstance(entry, dict):
                raise InvalidInput(f"{where}: expected an object")
            entries.append((_strip_key(key), _auth(entry, where, key)))
        return cls(entries)

    @classmethod
    def from_secret(cls, secret_type: str, data: Mapping[str, str], source: str) -> Keyring:
        """A pull secret's keyring: ``data`` as the API serves it (values base64).
        ``kubernetes.io/dockerconfigjson`` reads ``.dockerconfigjson``, ``kubernetes.io/dockercfg``
        reads ``.dockercfg``; other types hold no registry credentials (upstream skips them)."""
        keys = {
            "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
            "kubernetes.io/dockercfg": ".dockercfg",
        }
        key = keys.get(secret_type)
        if key is None:
            return cls()
        if key not in data:
            raise InvalidInput(f"{source}: data[{key!r}] is missing")
        try:
            raw = base64.b64decode(data[key], validate=True)
        except binascii.Error as e:
            raise InvalidInput(f"{source}: data[{key!r}] is not base64") from e
        return cls.from_docker_config(raw, f"{source}: data[{key!r}]")

    def lookup(self, image: str) -> list[RegistryAuth]:
        """Credentials to try for ``image`` (any reference form), in order; [] for none."""
        r = parse_ref(image)
        target = _Key.parse(f"{r.registry}/{r.repository}")
        found = [a for k, key in self._index if key.matches(target) for a in self._creds(k)]
        if not found and r.registry == "docker.io":
            found = self._creds(_DOCKER_HUB)
        return found

    def _creds(self, key: str) -> list[RegistryAuth]:
        return [a for k, a in self._entries if k == key]


class _Union(Keyring):
    def __init__(self, first: Keyring, second: Keyring) -> None:
        super().__init__()
        self._parts = (first, second)

    def __bool__(self) -> bool:
        return any(self._parts)

    def lookup(self, image: str) -> list[RegistryAuth]:
        return [a for part in self._parts for a in part.lookup(image)]


def _strip_key(key: str) -> str:
    """``https://index.docker.io/v1/`` → ``index.docker.io`` (upstream's key normalisation)."""
    k = _Key.parse(key)
    host = ".".join(k.host_parts) + (f":{k.port}" if k.port else "")
    return host + k.path


def _auth(entry: Mapping[str, object], where: str, server: str) -> RegistryAuth:
    fields = {}
    for name in ("username", "password", "auth", "identitytoken", "email"):
        value = entry.get(name, "")
        if not isinstance(value, str):
            raise InvalidInput(f"{where}.{name}: expected a string")
        fields[name] = value
    username, password = fields["username"], fields["password"]
    if fields["auth"]:
        try:
            decoded = base64.b64decode(fields["auth"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise InvalidInput(f"{where}.auth: not base64") from e
        username, sep, password = decoded.partition(":")
        if not sep:
            raise InvalidInput(f"{where}.auth: not base64 of user:password")
    return RegistryAuth(
        username=username,
        password=password,
        identity_token=fields["identitytoken"],
        server=server,
    )


def load_docker_config_file(path: str | Path) -> Keyring:
    """Read a docker config file; a missing or bad file is ``InvalidInput`` naming it."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InvalidInput(f"docker config {path}: {e.strerror}") from e
    return Keyring.from_docker_config(data, str(path))


class DockerConfigFiles:
    """The node's credentials: ``explicit`` (``dockerConfigFile``) or the first file of
    ``search`` that exists (upstream's search path), re-read when it changes on disk. Blocking:
    call ``keyring`` off the event loop."""

    def __init__(self, explicit: str = "", search: Sequence[str] = ()) -> None:
        self._paths = (explicit,) if explicit else tuple(search)
        self._explicit = bool(explicit)
        self._stamp: tuple[str, int, int] | None = None
        self._keyring = Keyring()

    @classmethod
    def for_node(cls, explicit: str, root_dir: str) -> DockerConfigFiles:
        home = os.path.expanduser("~")
        search = (
            os.path.join(root_dir, "config.json"),
            os.path.join(home, ".docker", "config.json"),
            os.path.join(root_dir, ".dockercfg"),
            os.path.join(home, ".dockercfg"),
        )
        return cls(explicit, search)

    def check(self) -> None:
        """At start-up: a named file must exist and parse (``InvalidInput`` naming it)."""
        if self._explicit:
            load_docker_config_file(self._paths[0])

    def keyring(self) -> Keyring:
        for path in self._paths:
            try:
                st = os.stat(path)
            except OSError:
                continue
            stamp = (path, st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                try:
                    self._keyring = load_docker_config_file(path)
                except InvalidInput as e:  # keep the last good one; say so once per change
                    log.warning("registry credentials not reloaded: %s", e)
                self._stamp = stamp
            return self._keyring
        if self._explicit and self._stamp is not None:
            log.warning(
                "docker config %s has gone: pulling without its credentials", self._paths[0]
            )
        self._stamp, self._keyring = None, Keyring()
        return self._keyring

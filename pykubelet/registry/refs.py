"""Image reference normalisation, as containerd and the CRI do it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pykubelet.core.errors import InvalidInput

__all__ = ["ImageRef", "normalize_ref", "parse_ref"]

_REF = re.compile(r"[a-z0-9]([a-zA-Z0-9._:/@+-]*[a-zA-Z0-9])?")  # fullmatch only


def normalize_ref(ref: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest``; ``localhost/busybox:1.35`` stays.

    The first path component is a registry when it contains ``.`` or ``:`` or is ``localhost``;
    otherwise ``docker.io`` is implied (with ``library/`` for one-component names). A missing tag
    becomes ``:latest`` unless the reference carries a digest.
    """
    if not ref or not _REF.fullmatch(ref) or "//" in ref:
        raise InvalidInput(f"image: invalid reference {ref!r}")
    name, at, digest = ref.partition("@")
    first, slash, rest = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        domain, path = "docker.io", name
    else:
        domain, path = first, rest
    if domain == "docker.io" and "/" not in path.split(":")[0]:
        path = "library/" + path
    last = path.rsplit("/", 1)[-1]
    if ":" not in last and not at:
        path += ":latest"
    return f"{domain}/{path}{at}{digest}"


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # fullmatch only


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRef:
    """A normalised reference split for the distribution API."""

    registry: str  # "docker.io", "127.0.0.1:5000"
    repository: str  # "library/busybox"
    tag: str  # "" when the reference has only a digest
    digest: str  # "sha256:<hex>" or ""

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when there is one (it wins over a tag)."""
        return self.digest or self.tag

    @property
    def api_host(self) -> str:
        """Docker Hub's API is not served on its name."""
        return "registry-1.docker.io" if self.registry == "docker.io" else self.registry


def parse_ref(ref: str) -> ImageRef:
    norm = normalize_ref(ref)
    name, _, digest = norm.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise InvalidInput(f"image: {ref!r}: only sha256 digests of 64 hex digits are supported")
    registry, _, path = name.partition("/")
    repository, tag = path, ""
    if ":" in path.rsplit("/", 1)[-1]:
        repository, _, tag = path.rpartition(":")
    return ImageRef(registry=registry, repository=repository, tag=tag, digest=digest)

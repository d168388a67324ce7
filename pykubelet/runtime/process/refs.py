"""Image reference normalisation, as containerd and the CRI do it."""

from __future__ import annotations

import re

from pykubelet.core.errors import InvalidInput

__all__ = ["HOST_IMAGE", "normalize_ref"]

HOST_IMAGE = "host"  # reserved: no image, the container runs on the host's root filesystem

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

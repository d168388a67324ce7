"""The process runtime's reserved image name; references are parsed in ``pykubelet.registry``."""

from __future__ import annotations

from pykubelet.registry import normalize_ref

__all__ = ["HOST_IMAGE", "normalize_ref"]

HOST_IMAGE = "host"  # reserved: no image, the container runs on the host's root filesystem

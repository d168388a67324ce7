"""OCI and Docker v2 manifests, sans IO: parse them and pick the host's platform from an index.

Docker v2 schema 2 and OCI manifests and their lists (manifest list, image index) are
understood; schema 1 (signed, pre-2017) is refused with a message that says so.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass

from pykubelet.runtime.errors import ImagePullError

__all__ = [
    "ACCEPT",
    "Descriptor",
    "ImageIndex",
    "ImageManifest",
    "host_platform",
    "parse_manifest",
    "choose_platform",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

# layer media types we can unpack: tar, gzip'd tar (docker's and OCI's names, foreign too)
_LAYER_TYPES = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
    }
)

_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Descriptor:
    media_type: str
    digest: str
    size_bytes: int
    os: str = ""
    architecture: str = ""
    variant: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageManifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageIndex:
    manifests: tuple[Descriptor, ...]


def host_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) of this machine in OCI's words."""
    machine = platform.machine()
    arch = _ARCH.get(machine, machine)
    variant = "v8" if arch == "arm64" else "v7" if machine == "armv7l" else ""
    return "linux", arch, variant


def _descriptor(obj: object, what: str) -> Descriptor:
    if not isinstance(obj, dict) or not isinstance(obj.get("digest"), str):
        raise ImagePullError(f"manifest: {what} is not a descriptor with a digest")
    plat = obj.get("platform") or {}
    return Descriptor(
        media_type=str(obj.get("mediaType") or ""),
        digest=obj["digest"],
        size_bytes=int(obj.get("size") or 0),
        os=str(plat.get("os") or ""),
        architecture=str(plat.get("architecture") or ""),
        variant=str(plat.get("variant") or ""),
    )


def parse_manifest(body: bytes, content_type: str = "") -> ImageManifest | ImageIndex:
    """A manifest or index from the registry's bytes; the Content-Type, else the body's own
    ``mediaType``, else its shape, says which."""
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise ImagePullError(f"manifest: not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ImagePullError("manifest: not a JSON object")
    media = content_type.split(";")[0].strip() or str(doc.get("mediaType") or "")
    if media in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ImagePullError(
            "manifest: Docker schema 1 images are not supported (push the image again with a "
            "current client to get schema 2 or OCI)"
        )
    if media in (OCI_INDEX, DOCKER_LIST) or (
        media not in (OCI_MANIFEST, DOCKER_MANIFEST) and "manifests" in doc
    ):
        items = doc.get("manifests")
        if not isinstance(items, list):
            raise ImagePullError("manifest: an index without a manifests list")
        return ImageIndex(manifests=tuple(_descriptor(m, "manifests[]") for m in items))
    layers = doc.get("layers")
    if not isinstance(layers, list) or "config" not in doc:
        raise ImagePullError(f"manifest: unsupported media type {media!r}")
    parsed = tuple(_descriptor(x, "layers[]") for x in layers)
    for layer in parsed:
        if layer.media_type and layer.media_type not in _LAYER_TYPES:
            raise ImagePullError(
                f"manifest: layer media type {layer.media_type!r} is not supported"
            )
    return ImageManifest(config=_descriptor(doc["config"], "config"), layers=parsed)


def choose_platform(index: ImageIndex, want: tuple[str, str, str] | None = None) -> Descriptor:
    """The index entry for ``want`` (default: this host), as containerd matches platforms:
    os and architecture must match; a matching variant beats a missing one."""
    os_, arch, variant = want or host_platform()
    fits = [m for m in index.manifests if m.os == os_ and m.architecture == arch]
    exact = [m for m in fits if m.variant == variant]
    loose = [m for m in fits if not m.variant]
    if not fits:
        offered = ", ".join(
            "/".join(x for x in (m.os, m.architecture, m.variant) if x) for m in index.manifests
        )
        raise ImagePullError(
            f"no image for {os_}/{arch} in the manifest list (it has: {offered or 'nothing'})"
        )
    return (exact or loose or fits)[0]

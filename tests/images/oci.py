"""Build OCI image layouts (directories) for registry tests: layers from file tables, multi-layer
images with whiteouts, gzip'd or plain layers, and multi-platform indexes. skopeo pushes them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path

__all__ = ["Layout", "busybox_layer", "tar_layer"]

# name -> file bytes, or "dir", or "->target" for a symlink
Files = dict[str, "bytes | str"]


def tar_layer(files: Files) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, what in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if what == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(what, str) and what.startswith("->"):
                info.type, info.linkname = tarfile.SYMTYPE, what[2:]
                tar.addfile(info)
            else:
                data = what.encode() if isinstance(what, str) else what
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def busybox_layer() -> bytes:
    """The uncompressed busybox layer of ``devtools.busybox_image`` (Debian's busybox-static)."""
    from devtools.busybox_image import build_busybox_image

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "bb.tar"
        build_busybox_image(out)
        with tarfile.open(out) as t:
            index_file = t.extractfile("index.json")
            assert index_file is not None  # None only for a member that is not a file
            index = json.load(index_file)
            mdigest = index["manifests"][0]["digest"].split(":")[1]
            manifest_file = t.extractfile(f"blobs/sha256/{mdigest}")
            assert manifest_file is not None
            manifest = json.load(manifest_file)
            ldigest = manifest["layers"][0]["digest"].split(":")[1]
            blob = t.extractfile(f"blobs/sha256/{ldigest}")
            assert blob is not None
            return gzip.decompress(blob.read())


class Layout:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._index: list[dict[str, object]] = []
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def blob(self, data: bytes, media_type: str) -> dict[str, object]:
        hexd = hashlib.sha256(data).hexdigest()
        (self.path / "blobs" / "sha256" / hexd).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{hexd}", "size": len(data)}

    def image(
        self,
        layers: list[bytes],
        *,
        gzipped: list[bool] | None = None,
        arch: str = "amd64",
        cmd: tuple[str, ...] = ("sh",),
    ) -> dict[str, object]:
        """A manifest for uncompressed ``layers`` (gzip'd where ``gzipped`` says, default all)."""
        gz = gzipped or [True] * len(layers)
        descs = []
        for data, z in zip(layers, gz, strict=True):
            if z:
                descs.append(
                    self.blob(
                        gzip.compress(data, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
                    )
                )
            else:
                descs.append(self.blob(data, "application/vnd.oci.image.layer.v1.tar"))
        config = {
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/bin:/usr/bin"], "Cmd": list(cmd)},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers],
            },
        }
        cdesc = self.blob(
            json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json"
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cdesc,
            "layers": descs,
        }
        desc = self.blob(
            json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json"
        )
        return {**desc, "platform": {"os": "linux", "architecture": arch}}

    def index(self, manifests: list[dict[str, object]]) -> dict[str, object]:
        doc = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }
        return self.blob(json.dumps(doc).encode(), "application/vnd.oci.image.index.v1+json")

    def tag(self, desc: dict[str, object], tag: str) -> None:
        entry = {k: v for k, v in desc.items() if k != "platform"}
        entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self._index.append(entry)
        (self.path / "index.json").write_text(
            json.dumps({"schemaVersion": 2, "manifests": self._index})
        )

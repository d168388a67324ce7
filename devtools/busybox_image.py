"""Build a tiny OCI image (layout tarball) from Debian's static busybox, for tests and examples."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from pykubelet.core.errors import Unavailable

__all__ = ["BUSYBOX_PATH", "build_busybox_image", "build_pause_image", "write_oci_image"]

BUSYBOX_PATH = Path("/bin/busybox")
_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _add(
    tar: tarfile.TarFile,
    name: str,
    *,
    data: bytes | None = None,
    mode: int = 0o644,
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
) -> None:
    info = tarfile.TarInfo(name)
    info.mode = mode
    info.type = kind
    info.mtime = 0
    info.linkname = link
    if data is not None:
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def _layer(busybox: Path) -> bytes:
    binary = busybox.read_bytes()
    applets = subprocess.run(
        [str(busybox), "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d, mode in (
            ("bin", 0o755),
            ("dev", 0o755),
            ("etc", 0o755),
            ("proc", 0o555),
            ("sys", 0o555),
            ("tmp", 0o1777),
            ("root", 0o700),
            ("var", 0o755),
            ("home", 0o755),
            ("usr", 0o755),
            ("usr/bin", 0o755),
        ):
            _add(tar, d, mode=mode, kind=tarfile.DIRTYPE)
        _add(tar, "bin/busybox", data=binary, mode=0o755)
        for applet in sorted(set(applets) - {"busybox"}):
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox")
        _add(
            tar,
            "etc/passwd",
            data=b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        )
        _add(tar, "etc/group", data=b"root:x:0:\nnobody:x:65534:\n")
        # mount points of the pod's /etc files, so no container copies /etc up to create them
        for name in ("hostname", "hosts", "resolv.conf"):
            _add(tar, f"etc/{name}", data=b"")
    # gzip with mtime 0 so the same busybox always gives the same digests
    return gzip.compress(raw.getvalue(), mtime=0)


def build_busybox_image(out_tar: Path, ref: str = "localhost/busybox:latest") -> Path:
    """Write an OCI image layout tarball holding ``/bin/busybox`` with its applet links.

    The image's config has ``Cmd ["sh"]`` and a standard ``PATH``. Raises ``Unavailable`` when
    Debian's busybox-static is not installed.
    """
    if not BUSYBOX_PATH.is_file():
        raise Unavailable(f"{BUSYBOX_PATH} is missing: install Debian's busybox-static")
    return write_oci_image(out_tar, ref, _layer(BUSYBOX_PATH), {"Env": [_PATH_ENV], "Cmd": ["sh"]})


def write_oci_image(
    out_tar: Path, ref: str, layer_gz: bytes, image_config: dict[str, object]
) -> Path:
    """Write a one-layer OCI image layout tarball (reproducible digests) named ``ref``."""
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer_gz)).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(0)),
            "config": image_config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return digest

    layer_digest = blob(layer_gz)
    config_digest = blob(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": len(layer_gz),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    manifest_digest = blob(manifest)
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": len(manifest),
                    "annotations": {
                        "io.containerd.image.name": ref,
                        "org.opencontainers.image.ref.name": tag,
                    },
                }
            ],
        },
        sort_keys=True,
    ).encode()
    out_tar.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out_tar, "w") as tar:
        _add(tar, "oci-layout", data=b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", data=index)
        _add(tar, "blobs", mode=0o755, kind=tarfile.DIRTYPE)
        _add(tar, "blobs/sha256", mode=0o755, kind=tarfile.DIRTYPE)
        for digest, data in blobs.items():
            _add(tar, "blobs/sha256/" + digest.split(":")[1], data=data)
    return out_tar


# The sandbox holder containerd runs as each pod's first container: sleep until told to stop,
# reaping whatever the pod's shared PID namespace orphans. Ours, not the upstream pause.c.
_PAUSE_C = r"""
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
    struct sigaction q = {.sa_handler = quit}, r = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
    sigaction(SIGINT, &q, NULL);
    sigaction(SIGTERM, &q, NULL);
    sigaction(SIGCHLD, &r, NULL);
    for (;;) pause();
}
"""


def _pause_layer(work: Path) -> bytes:
    src = work / "pause.c"
    exe = work / "pause"
    src.write_text(_PAUSE_C)
    try:
        subprocess.run(
            ["gcc", "-Os", "-static", "-o", str(exe), str(src)], check=True, capture_output=True
        )
    except (OSError, subprocess.CalledProcessError) as e:
        raise Unavailable(f"cannot build the pause binary (gcc -static, libc6-dev): {e}") from e
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "pause", data=exe.read_bytes(), mode=0o755)
    return gzip.compress(raw.getvalue(), mtime=0)


def build_pause_image(out_tar: Path, ref: str = "localhost/pause:3.4") -> Path:
    """Write the sandbox (pause) image containerd needs offline: a static ``/pause``."""
    with tempfile.TemporaryDirectory() as work:
        layer = _pause_layer(Path(work))
    return write_oci_image(out_tar, ref, layer, {"Entrypoint": ["/pause"]})

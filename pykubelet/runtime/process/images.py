"""The local image store: pulled images (``pull.py``) and imported OCI-layout and docker-archive
tarballs, each unpacked once.

Layout under ``<root>/images``: ``index.json`` (normalised ref → image id), ``configs/<hex>.json``
(the OCI image config) and ``rootfs/<hex>/`` (the image's layers applied in order by
``layers.py``, whiteouts honoured: the read-only lower directory of every container's overlay).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, cast

from pykubelet.core.errors import InvalidInput
from pykubelet.runtime.errors import ImageNotFound
from pykubelet.runtime.process.layers import apply_layer
from pykubelet.runtime.process.refs import HOST_IMAGE, normalize_ref
from pykubelet.runtime.types import ImageFsUsage, ImageInfo

__all__ = ["ImageStore", "host_image_info"]

_JSON = dict[str, object]


def host_image_info() -> ImageInfo:
    return ImageInfo(id=HOST_IMAGE, repo_tags=(HOST_IMAGE,), size_bytes=0, host_root=True)


class ImageStore:
    """Synchronous store (callers run it in a thread); safe for concurrent readers."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        # index.json and the image infos, as of the index file's (inode, mtime, size): a
        # hundred pods starting at once ask for the same image hundreds of times
        self._stamp: tuple[int, int, int] | None = None
        self._cached_index: dict[str, str] = {}
        self._infos: dict[str, ImageInfo | None] = {}
        self._cache_lock = threading.Lock()
        self._unpacking: dict[str, threading.Lock] = {}  # image hex id -> its unpack lock

    # ------------------------------------------------------------------ queries

    def _index_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._root / "index.json")
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def fresh(self) -> bool:
        """Whether ``get`` would answer from memory (one ``stat``, no reading): the runtime
        then answers on the event loop instead of a worker thread."""
        return self._stamp is not None and self._index_stamp() == self._stamp

    def _index(self) -> dict[str, str]:
        """The ref → id index (do not modify: it is shared)."""
        stamp = self._index_stamp()
        if stamp is None:
            return {}
        with self._cache_lock:
            if stamp != self._stamp:
                try:
                    text = (self._root / "index.json").read_text()
                except FileNotFoundError:
                    return {}
                self._cached_index = cast(dict[str, str], json.loads(text))
                self._infos, self._stamp = {}, stamp
            return self._cached_index

    def get(self, ref: str) -> ImageInfo | None:
        if ref == HOST_IMAGE:
            return host_image_info()
        image_id = ref if ref.startswith("sha256:") else self._index().get(normalize_ref(ref))
        if image_id is None:
            return None
        return self._info(image_id)

    def require(self, ref: str) -> ImageInfo:
        info = self.get(ref)
        if info is None:
            raise ImageNotFound(
                f"image {ref!r} is not in the local store: pull it (`pykubelet images pull`) or "
                f"import it with `pykubelet images import FILE` (an OCI layout or docker-archive "
                f"tarball)"
            )
        return info

    def list_images(self) -> list[ImageInfo]:
        ids = sorted(set(self._index().values()))
        return [i for i in (self._info(x) for x in ids) if i is not None]

    def remove(self, ref: str) -> None:
        """Forget the image a reference or id names: every reference to it, its config and its
        root filesystem. Idempotent."""
        if ref == HOST_IMAGE:
            return
        with self._lock:
            index = dict(self._index())
            image_id = ref if ref.startswith("sha256:") else index.get(normalize_ref(ref))
            if image_id is None:
                return
            kept = {r: i for r, i in index.items() if i != image_id}
            _atomic_write(self._root / "index.json", json.dumps(kept, indent=1).encode())
            hexid = image_id.removeprefix("sha256:")
            with contextlib.suppress(FileNotFoundError):
                (self._root / "configs" / f"{hexid}.json").unlink()
        rootfs = self._root / "rootfs" / hexid
        if rootfs.exists():  # renamed first, so a crash never leaves half an image in place
            doomed = self._root / "rootfs" / f".rm-{uuid.uuid4().hex}"
            rootfs.rename(doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def fs_usage(self) -> ImageFsUsage:
        self._root.mkdir(parents=True, exist_ok=True)
        st = os.statvfs(self._root)
        return ImageFsUsage(
            capacity_bytes=st.f_blocks * st.f_frsize,
            available_bytes=st.f_bavail * st.f_frsize,
            images_bytes=sum(i.size_bytes for i in self.list_images()),
        )

    def _info(self, image_id: str) -> ImageInfo | None:
        index = self._index()
        with self._cache_lock:
            if image_id not in self._infos:
                self._infos[image_id] = self._read_info(image_id, index)
            return self._infos[image_id]

    def _read_info(self, image_id: str, index: dict[str, str]) -> ImageInfo | None:
        hexid = image_id.removeprefix("sha256:")
        try:
            meta = json.loads((self._root / "configs" / f"{hexid}.json").read_text())
        except FileNotFoundError:
            return None
        cfg = meta.get("config", {}).get("config") or {}
        tags = tuple(sorted(r for r, i in index.items() if i == image_id and "@" not in r))
        return ImageInfo(
            id=image_id,
            repo_tags=tags,
            size_bytes=int(meta.get("size_bytes", 0)),
            rootfs_path=str(self._root / "rootfs" / hexid),
            config_entrypoint=tuple(cfg.get("Entrypoint") or ()),
            config_cmd=tuple(cfg.get("Cmd") or ()),
            config_env=tuple(cfg.get("Env") or ()),
            config_working_dir=str(cfg.get("WorkingDir") or ""),
            config_user=str(cfg.get("User") or ""),
            repo_digests=tuple(meta.get("repo_digests") or ()),
        )

    # ------------------------------------------------------------------ import

    def import_archive(self, path: Path, *, ref: str | None = None) -> ImageInfo:
        """Import an OCI image layout or docker-archive tarball; return the (last) image.

        ``ref`` names the image when the archive carries no full name (an OCI layout whose
        ``org.opencontainers.image.ref.name`` is just a tag).
        """
        try:
            tar = tarfile.open(path)
        except (OSError, tarfile.TarError) as e:
            raise InvalidInput(f"image archive {path}: cannot read: {e}") from e
        with tar:
            names = set(tar.getnames())
            norm = {n.removeprefix("./") for n in names}
            if "index.json" in norm and "oci-layout" in norm:
                images = list(_oci_images(tar, ref))
            elif "manifest.json" in norm:
                images = list(_docker_images(tar))
            else:
                raise InvalidInput(
                    f"image archive {path}: neither an OCI layout (index.json, oci-layout) "
                    f"nor a docker archive (manifest.json)"
                )
            if not images:
                raise InvalidInput(f"image archive {path}: no image manifests")
            last: ImageInfo | None = None
            for refs, config_bytes, layers in images:

                def apply(root: Path, layers: list[str] = layers) -> None:
                    for layer in layers:
                        with _open_member(tar, layer) as blob:
                            apply_layer(blob, root)

                last = self.store(refs, config_bytes, apply)
            assert last is not None
            return last

    def _unpack_lock(self, hexid: str) -> threading.Lock:
        with self._cache_lock:
            return self._unpacking.setdefault(hexid, threading.Lock())

    def has_config(self, config_digest: str) -> bool:
        """Whether the image with this config (= image id) is already unpacked: a re-pull
        then fetches no layer."""
        hexid = config_digest.removeprefix("sha256:")
        return (self._root / "configs" / f"{hexid}.json").exists()

    def store(
        self,
        refs: list[str],
        config_bytes: bytes,
        unpack: Callable[[Path], None],
        *,
        repo_digest: str = "",
    ) -> ImageInfo:
        """Record an image: ``unpack(dir)`` fills its root filesystem (skipped when the image
        is stored already); ``refs`` then point at it. ``repo_digest`` (``name@sha256:..``)
        marks it as pulled from a registry."""
        hexid = hashlib.sha256(config_bytes).hexdigest()
        image_id = "sha256:" + hexid
        rootfs = self._root / "rootfs" / hexid
        configs = self._root / "configs"
        configs.mkdir(parents=True, exist_ok=True)
        meta_path = configs / f"{hexid}.json"
        # one unpack per image: a second pull of it (by tag and by digest at once) waits, then
        # finds it stored, and never replaces a root filesystem a container may already use
        with self._unpack_lock(hexid):
            if not meta_path.exists():
                tmp = self._root / "rootfs" / f".tmp-{uuid.uuid4().hex}"
                tmp.mkdir(parents=True)
                try:
                    unpack(tmp)
                    size = _du(tmp)
                    if rootfs.exists():  # left by a crash before its config was written
                        shutil.rmtree(rootfs)
                    tmp.rename(rootfs)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                meta = {"config": json.loads(config_bytes), "size_bytes": size}
                _atomic_write(meta_path, json.dumps(meta).encode())
        with self._lock:
            if repo_digest:
                meta = json.loads(meta_path.read_text())
                base = repo_digest.split("@")[0]  # a repository's newest digest replaces older
                digests = [d for d in meta.get("repo_digests", []) if d.split("@")[0] != base]
                meta["repo_digests"] = [*digests, repo_digest]
                _atomic_write(meta_path, json.dumps(meta).encode())
                with self._cache_lock:
                    self._infos.pop(image_id, None)
            index = dict(self._index())
            for r in refs:
                index[normalize_ref(r)] = image_id
            _atomic_write(self._root / "index.json", json.dumps(index, indent=1).encode())
        info = self._info(image_id)
        assert info is not None
        return info


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _du(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    with _open_member(tar, name) as f:
        return f.read()


@contextlib.contextmanager
def _open_member(tar: tarfile.TarFile, name: str) -> Iterator[IO[bytes]]:
    for candidate in (name, "./" + name, name.removeprefix("./")):
        try:
            f = tar.extractfile(candidate)
        except KeyError:
            continue
        if f is not None:
            with f:
                head = f.read(2)
                f.seek(0)
                if head == b"\x1f\x8b":
                    with gzip.GzipFile(fileobj=f) as g:
                        yield cast(IO[bytes], g)
                else:
                    yield f
            return
    raise InvalidInput(f"image archive: missing member {name!r}")


def _blob(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    return f"blobs/{algo}/{hexd}"


def _oci_images(
    tar: tarfile.TarFile, ref: str | None
) -> Iterator[tuple[list[str], bytes, list[str]]]:
    index = json.loads(_read(tar, "index.json"))
    for desc in index.get("manifests", []):
        ann = desc.get("annotations") or {}
        name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
        if name and "/" not in name and ":" not in name and ref is None:
            raise InvalidInput(
                f"image archive: the OCI layout names its image only by the tag {name!r}: "
                f"give the full reference"
            )
        refs = [ref] if ref else ([name] if name else [])
        manifest = json.loads(_read(tar, _blob(desc["digest"])))
        if "manifests" in manifest:  # an image index: take the linux/amd64 entry
            chosen = next(
                (
                    m
                    for m in manifest["manifests"]
                    if (m.get("platform") or {}).get("architecture") in ("amd64", None)
                ),
                None,
            )
            if chosen is None:
                continue
            manifest = json.loads(_read(tar, _blob(chosen["digest"])))
        config = _read(tar, _blob(manifest["config"]["digest"]))
        yield refs, config, [_blob(layer["digest"]) for layer in manifest.get("layers", [])]


def _docker_images(tar: tarfile.TarFile) -> Iterator[tuple[list[str], bytes, list[str]]]:
    for entry in json.loads(_read(tar, "manifest.json")):
        config = _read(tar, entry["Config"])
        yield list(entry.get("RepoTags") or []), config, list(entry.get("Layers") or [])

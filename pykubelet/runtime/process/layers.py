"""Apply one image layer (a tar, gzip'd or not) on top of a root filesystem.

OCI whiteouts: ``.wh.<name>`` deletes ``<name>`` of the layers below, ``.wh..wh..opq`` empties
its directory; both apply before the layer's own files (they never hide their own layer's).
Refused with ``InvalidInput``: member paths that are absolute, climb out with ``..``, pass
through a symlink, or hard-link outside the root. Device nodes and owners only as root.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import tarfile
from pathlib import Path, PurePosixPath
from typing import IO

from pykubelet.core.errors import InvalidInput

__all__ = ["apply_layer", "apply_layer_file"]


def _safe_target(root: Path, name: str) -> Path:
    """The destination of a member, refusing absolute paths, ``..`` and symlinked parents."""
    p = PurePosixPath(name)
    parts = [x for x in p.parts if x not in ("", ".")]
    if p.is_absolute() or ".." in parts:
        raise InvalidInput(f"image layer: unsafe member path {name!r}")
    cur = root
    for part in parts[:-1]:
        cur = cur / part
        if cur.is_symlink():
            raise InvalidInput(f"image layer: member {name!r} passes through a symlink")
    return root.joinpath(*parts) if parts else root


def _remove(path: Path) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def apply_layer(blob: IO[bytes], root: Path) -> None:
    """Apply a layer read from ``blob`` (an archive member: read whole)."""
    with tarfile.open(fileobj=io.BytesIO(blob.read())) as layer:
        _apply_tar(layer, root)


def apply_layer_file(path: Path, root: Path) -> None:
    """Apply a layer blob on disk (a tar, gzip'd or not) on top of ``root``."""
    with tarfile.open(path, "r:*") as layer:
        _apply_tar(layer, root)


def _apply_tar(layer: tarfile.TarFile, root: Path) -> None:
    # Whiteouts refer to lower layers only, so they go first, before this layer's own files.
    members = layer.getmembers()
    for m in members:
        base = PurePosixPath(m.name).name
        if base == ".wh..wh..opq":
            d = _safe_target(root, str(PurePosixPath(m.name).parent) + "/x").parent
            if d.is_dir() and not d.is_symlink():
                for child in d.iterdir():
                    _remove(child)
        elif base.startswith(".wh."):
            target = _safe_target(root, str(PurePosixPath(m.name).parent / base[4:]))
            _remove(target)
    is_root = os.geteuid() == 0
    for m in members:
        base = PurePosixPath(m.name).name
        if base.startswith(".wh."):
            continue
        target = _safe_target(root, m.name)
        if target == root:
            continue
        if m.islnk():
            src = _safe_target(root, m.linkname)
            if target.exists() or target.is_symlink():
                _remove(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, target, follow_symlinks=False)
            continue
        if m.isdir():
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                _remove(target)
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, m.mode & 0o7777)
        elif m.issym():
            if target.exists() or target.is_symlink():
                _remove(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(m.linkname, target)
        elif m.isreg():
            if target.exists() or target.is_symlink():
                _remove(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            body = layer.extractfile(m)
            assert body is not None
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out, body:
                shutil.copyfileobj(body, out)
            os.chmod(target, m.mode & 0o7777)
        elif (m.ischr() or m.isblk() or m.isfifo()) and is_root:
            if target.exists() or target.is_symlink():
                _remove(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(target, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor))
        else:
            continue
        if is_root:
            with contextlib.suppress(OSError):
                os.lchown(target, m.uid, m.gid)

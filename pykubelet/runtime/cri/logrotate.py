"""``containerLogMaxSize``/``containerLogMaxFiles`` on a CRI runtime: the kubelet rotates.

containerd only writes the file. As the Go kubelet's container log manager does, each rotation
of a running container's log that reached the size:

1. removes leftovers of an interrupted rotation (``*.tmp``, and a rotated file whose ``.gz``
   already exists);
2. removes the oldest rotated files so that at most ``max_files - 2`` remain (the current file
   and the one being rotated make ``max_files``);
3. gzips the remaining uncompressed rotated file (``<log>.<stamp>`` → ``<log>.<stamp>.gz``,
   through ``.tmp``), so only the newest rotation stays plain for readers that were following it;
4. renames the current file to ``<log>.<YYYYMMDD-hhmmss>``; the caller then asks the runtime to
   reopen (``ReopenContainerLog``) and renames it back if that fails.

The stamp is UTC (upstream: the kubelet's local time zone), as the process runtime names its
rotations. ``kubectl logs`` reads the current file only, as upstream.
"""

from __future__ import annotations

import glob
import gzip
import os
import shutil
import time

__all__ = ["COMPRESS_SUFFIX", "needs_rotation", "rotate", "undo_rotation"]

COMPRESS_SUFFIX = ".gz"
TMP_SUFFIX = ".tmp"
GZIP_LEVEL = 6  # Go's gzip.DefaultCompression


def needs_rotation(path: str, max_size: int) -> bool:
    try:
        return max_size > 0 and os.stat(path).st_size >= max_size
    except OSError:
        return False


def _in_use(name: str, names: set[str]) -> bool:
    if name.endswith(TMP_SUFFIX):
        return False
    return name.endswith(COMPRESS_SUFFIX) or name + COMPRESS_SUFFIX not in names


def _compress(name: str) -> None:
    tmp = name + TMP_SUFFIX
    mode = os.stat(name).st_mode & 0o777
    try:
        with open(name, "rb") as src, open(tmp, "wb") as raw:
            os.fchmod(raw.fileno(), mode)
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0
            ) as gz:
                shutil.copyfileobj(src, gz, 1 << 20)
        os.rename(tmp, name + COMPRESS_SUFFIX)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    os.unlink(name)


def rotate(path: str, max_files: int, now: float) -> str | None:
    """Prune and compress older rotations, then rename ``path`` aside; return the new name,
    or None when a rotation already has this second's name (the next pass rotates).
    Blocking; raises OSError."""
    target = f"{path}.{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}"
    if os.path.exists(target) or os.path.exists(target + COMPRESS_SUFFIX):
        return None  # before touching anything: the newest rotation stays the plain one
    names = set(glob.glob(glob.escape(path) + ".*"))
    for unused in sorted(n for n in names if not _in_use(n, names)):
        os.unlink(unused)
    kept = sorted(n for n in names if _in_use(n, names))
    excess = max(0, len(kept) - max(0, max_files - 2))
    for old in kept[:excess]:  # oldest first, so a reader of a newer file is left alone
        os.unlink(old)
    for name in kept[excess:]:
        if not name.endswith(COMPRESS_SUFFIX):
            _compress(name)
    os.rename(path, target)
    return target


def undo_rotation(path: str, rotated: str) -> None:
    """The runtime could not reopen: put the file back so logging continues where it was."""
    try:
        os.rename(rotated, path)
    except OSError as e:  # upstream: "this shouldn't happen"; the old lines are lost
        raise OSError(e.errno, f"could not put {rotated} back as {path}: {e.strerror}") from None

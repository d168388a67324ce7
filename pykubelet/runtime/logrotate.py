"""``containerLogMaxSize``/``containerLogMaxFiles``: what happens to rotated container logs.

Both runtimes end with upstream's layout (the Go kubelet's container log manager): the current
file, the newest rotation plain (a reader may still be following it), older rotations gzipped,
at most ``max_files`` files in all. Who renames differs:

* CRI (containerd only writes the file): ``rotate`` tidies the older rotations, then renames
  the current file; the caller asks the runtime to reopen (``ReopenContainerLog``) and calls
  ``undo_rotation`` if that fails.
* the process runtime: the shim owns the fd and renames the moment a record would pass the
  size (deleting the oldest beyond the count); ``tidy_rotations`` then gzips behind it.

Tidying removes leftovers of an interrupted rotation (``*.tmp``, a rotated file whose ``.gz``
exists), deletes the oldest rotations beyond the count, and gzips all but the newest ``plain``
ones (``<log>.<stamp>`` → ``<log>.<stamp>.gz``, through ``.tmp``). Rotations are
``<log>.<YYYYMMDD-hhmmss>``, UTC (upstream: the kubelet's local time zone), so names sort by
age, and ``.gz`` only ever follows the stamp. ``kubectl logs`` reads the current file only.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import os
import shutil
import time

__all__ = [
    "COMPRESS_SUFFIX",
    "TMP_SUFFIX",
    "needs_rotation",
    "rotate",
    "tidy_rotations",
    "undo_rotation",
]

COMPRESS_SUFFIX = ".gz"
TMP_SUFFIX = ".tmp"
GZIP_LEVEL = 6  # Go's gzip.DefaultCompression


def needs_rotation(path: str, max_size: int) -> bool:
    try:
        return max_size > 0 and os.stat(path).st_size >= max_size
    except OSError:
        return False


def _rotation_name(path: str, now: float) -> str:
    """``<path>.<YYYYMMDD-hhmmss>`` (UTC), the name a rotation at ``now`` gets."""
    return f"{path}.{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}"


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
    try:
        os.unlink(name)
    except FileNotFoundError:  # the process runtime's shim pruned this rotation meanwhile
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name + COMPRESS_SUFFIX)


def tidy_rotations(path: str, keep: int, plain: int) -> int:
    """Remove leftovers, delete the oldest rotations of ``path`` beyond ``keep`` and gzip all
    but the newest ``plain``; return how many files were gzipped. Blocking; raises OSError."""
    names = set(glob.glob(glob.escape(path) + ".*"))
    for unused in sorted(n for n in names if not _in_use(n, names)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(unused)
    kept = sorted(n for n in names if _in_use(n, names))
    excess = max(0, len(kept) - max(0, keep))
    for old in kept[:excess]:  # oldest first, so a reader of a newer file is left alone
        with contextlib.suppress(FileNotFoundError):
            os.unlink(old)
    older = kept[excess : max(excess, len(kept) - plain)]
    done = 0
    for name in (n for n in older if not n.endswith(COMPRESS_SUFFIX)):
        with contextlib.suppress(FileNotFoundError):  # the shim pruned it before we began
            _compress(name)
            done += 1
    return done


def rotate(path: str, max_files: int, now: float) -> str | None:
    """Tidy the older rotations (the current file and the one made now make ``max_files``),
    then rename ``path`` aside; return the new name, or None when a rotation already has
    this second's name (the next pass rotates). Blocking; raises OSError."""
    target = _rotation_name(path, now)
    if os.path.exists(target) or os.path.exists(target + COMPRESS_SUFFIX):
        return None  # before touching anything: the newest rotation stays the plain one
    tidy_rotations(path, max_files - 2, plain=0)
    os.rename(path, target)
    return target


def undo_rotation(path: str, rotated: str) -> None:
    """The runtime could not reopen: put the file back so logging continues where it was."""
    try:
        os.rename(rotated, path)
    except OSError as e:  # upstream: "this shouldn't happen"; the old lines are lost
        raise OSError(e.errno, f"could not put {rotated} back as {path}: {e.strerror}") from None

"""``containerLogMaxSize``/``containerLogMaxFiles`` on a CRI runtime: the kubelet rotates.

containerd only writes the file; as the Go kubelet does (``node-and-cri.md`` §7.9), pykubelet
renames a running container's log once it reaches the size, drops the oldest rotated files
beyond ``max_files - 1``, and asks the runtime to reopen (``ReopenContainerLog``). Rotated files
are named ``<log>.<YYYYMMDD-hhmmss>`` as upstream and the process runtime name them; they are not
gzipped (a difference from upstream, shared with the process runtime).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

__all__ = ["needs_rotation", "rotate", "undo_rotation"]


def needs_rotation(path: str, max_size: int) -> bool:
    try:
        return max_size > 0 and os.stat(path).st_size >= max_size
    except OSError:
        return False


def rotate(path: str, max_files: int, now: float) -> str:
    """Rename ``path`` aside and prune old rotations; return the new name. Blocking."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    target, i = f"{path}.{stamp}", 1
    while os.path.exists(target):
        target, i = f"{path}.{stamp}.{i}", i + 1
    os.rename(path, target)
    p = Path(path)
    rotated = sorted(
        (f for f in p.parent.iterdir() if f.name.startswith(p.name + ".")),
        key=lambda f: f.name,
    )
    for old in rotated[: max(0, len(rotated) - (max_files - 1))]:
        with contextlib.suppress(OSError):
            old.unlink()
    return target


def undo_rotation(path: str, rotated: str) -> None:
    """The runtime could not reopen: put the file back so logging continues where it was."""
    with contextlib.suppress(OSError):
        os.rename(rotated, path)

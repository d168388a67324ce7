"""A small tmpfs that a test mounts itself, and a way to fill it: disk-full tests."""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.prereq import require_binary, require_root


@contextlib.contextmanager
def small_tmpfs(d: Path, size: str) -> Iterator[Path]:
    """``d`` (made if missing) as a tmpfs of ``size`` (mount's syntax, e.g. ``256k``),
    unmounted afterwards even when the test fails."""
    require_root()
    mount = require_binary("mount")
    d.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(d)], check=True
    )
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


def fill(volume: Path) -> Path:
    """Write a file until the volume refuses (ENOSPC); return it."""
    filler = volume / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    return filler

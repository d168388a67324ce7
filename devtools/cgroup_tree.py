"""Removing a cgroup directory tree a bench made (deepest first: a cgroup directory can only be
removed once it has no children; its files go with it)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["remove_cgroup_dirs"]


def remove_cgroup_dirs(dirs: Iterable[Path]) -> None:
    """Each existing directory of ``dirs`` and every cgroup below it. Raises ``OSError`` if
    one is still in use (a process left in it), so a bench does not hide a leak."""
    for d in dirs:
        if not d.exists():
            continue
        for sub in sorted(d.rglob("*"), key=lambda p: -len(p.parts)):
            if sub.is_dir():
                sub.rmdir()
        d.rmdir()

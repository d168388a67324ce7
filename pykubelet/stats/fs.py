"""Filesystem figures: statvfs of a mount and a du-like walk of a directory, cached.

Blocking: call from a worker thread. Walking a large directory is the most expensive thing the
collector does, so results are kept for ``ttl_s`` (upstream caches for about a minute too).
"""

from __future__ import annotations

import os
import stat as stat_mod
import threading
from dataclasses import dataclass

__all__ = ["DirUsage", "DirUsageCache", "FsCapacity", "statvfs", "walk_usage"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FsCapacity:
    capacity_bytes: int
    available_bytes: int
    free_bytes: int
    inodes: int
    inodes_free: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DirUsage:
    used_bytes: int
    inodes_used: int


def statvfs(path: str) -> FsCapacity | None:
    """The filesystem holding ``path``, or None if the path does not exist."""
    try:
        st = os.statvfs(path)
    except FileNotFoundError:
        return None
    return FsCapacity(
        capacity_bytes=st.f_blocks * st.f_frsize,
        available_bytes=st.f_bavail * st.f_frsize,
        free_bytes=st.f_bfree * st.f_frsize,
        inodes=st.f_files,
        inodes_free=st.f_ffree,
    )


def walk_usage(root: str) -> DirUsage | None:
    """Disk use (allocated blocks) and inode count under ``root``, not crossing mounts.

    Hard links are counted once; entries that vanish mid-walk are skipped. None if ``root`` is gone.
    """
    try:
        top = os.lstat(root)
    except FileNotFoundError:
        return None
    dev = top.st_dev
    seen: set[tuple[int, int]] = set()
    used = top.st_blocks * 512
    inodes = 1
    stack = [root]
    while stack:
        path = stack.pop()
        try:
            it = os.scandir(path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if st.st_dev != dev:
                    continue
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                used += st.st_blocks * 512
                inodes += 1
                if stat_mod.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
    return DirUsage(used_bytes=used, inodes_used=inodes)


class DirUsageCache:
    """``walk_usage`` results kept per directory for ``ttl_s``; drops directories not asked for."""

    def __init__(self, ttl_s: float = 60.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, DirUsage | None]] = {}
        self._lock = threading.Lock()

    def get(self, path: str, now: float) -> DirUsage | None:
        with self._lock:
            hit = self._entries.get(path)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        usage = walk_usage(path)
        with self._lock:
            self._entries[path] = (now, usage)
        return usage

    def retain(self, paths: set[str]) -> None:
        with self._lock:
            for p in [p for p in self._entries if p not in paths]:
                del self._entries[p]

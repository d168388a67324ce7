"""Directory change notifications through Linux inotify (ctypes on libc), for log following.

One ``DirectoryWatcher`` owns one inotify descriptor, read by the event loop; it watches the
directories of followed files and wakes the listeners registered for a file name in them.
Several files in one directory share its watch (inotify returns one descriptor per inode).
``DirectoryWatcher.create()`` returns None where inotify is unavailable; callers then poll.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import logging
import os
import struct
from collections.abc import Callable

__all__ = ["DirectoryWatcher"]

log = logging.getLogger(__name__)

_IN_MODIFY = 0x002
_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
)
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")

Listener = Callable[[], None]


class DirectoryWatcher:
    def __init__(self, libc: ctypes.CDLL, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._libc = libc
        self._fd = fd
        self._loop = loop
        self._wd_by_dir: dict[str, int] = {}
        self._dir_by_wd: dict[int, str] = {}
        # directory → file name → listeners
        self._listeners: dict[str, dict[str, list[Listener]]] = {}
        loop.add_reader(fd, self._on_readable)

    @classmethod
    def create(cls) -> DirectoryWatcher | None:
        name = ctypes.util.find_library("c")
        if not name:
            return None
        try:
            libc = ctypes.CDLL(name, use_errno=True)
            init = libc.inotify_init1
        except (OSError, AttributeError):
            return None
        init.argtypes = [ctypes.c_int]
        init.restype = ctypes.c_int
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_add_watch.restype = ctypes.c_int
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.inotify_rm_watch.restype = ctypes.c_int
        fd = init(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            log.warning(
                "inotify unavailable (%s): log following polls", os.strerror(ctypes.get_errno())
            )
            return None
        return cls(libc, fd, asyncio.get_running_loop())

    def add(self, path: str, listener: Listener) -> bool:
        """Call ``listener`` (on the loop) whenever ``path`` or its directory entry changes."""
        directory, name = os.path.split(os.path.abspath(path))
        if directory not in self._wd_by_dir:
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(directory), _MASK)
            if wd < 0:
                return False
            self._wd_by_dir[directory] = wd
            self._dir_by_wd[wd] = directory
        self._listeners.setdefault(directory, {}).setdefault(name, []).append(listener)
        return True

    def remove(self, path: str, listener: Listener) -> None:
        directory, name = os.path.split(os.path.abspath(path))
        names = self._listeners.get(directory)
        if names is None or listener not in names.get(name, []):
            return
        names[name].remove(listener)
        if not names[name]:
            del names[name]
        if not names:
            del self._listeners[directory]
            wd = self._wd_by_dir.pop(directory, None)
            if wd is not None:
                self._dir_by_wd.pop(wd, None)
                self._libc.inotify_rm_watch(self._fd, wd)

    @property
    def watches(self) -> int:
        return len(self._wd_by_dir)

    def close(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)

    def _on_readable(self) -> None:
        try:
            buf = os.read(self._fd, 65536)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EINTR):
                return
            raise
        woken: set[int] = set()
        off = 0
        while off + _EVENT.size <= len(buf):
            wd, mask, _cookie, length = _EVENT.unpack_from(buf, off)
            raw_name = buf[off + _EVENT.size : off + _EVENT.size + length].rstrip(b"\0")
            off += _EVENT.size + length
            if mask & _IN_Q_OVERFLOW:
                targets = [ls for names in self._listeners.values() for ls in names.values()]
            else:
                directory = self._dir_by_wd.get(wd)
                if directory is None:
                    continue
                names = self._listeners.get(directory, {})
                if mask & _IN_IGNORED:
                    # The directory is gone and the kernel dropped the watch (its number may
                    # be reused): forget it and wake its listeners; they fall back to polling.
                    del self._dir_by_wd[wd]
                    self._wd_by_dir.pop(directory, None)
                    targets = list(names.values())
                else:
                    targets = [names.get(os.fsdecode(raw_name), [])]
            for listeners in targets:
                for listener in listeners:
                    if id(listener) not in woken:
                        woken.add(id(listener))
                        listener()

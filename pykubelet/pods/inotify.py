"""A minimal inotify watch on one directory through ctypes, readable from the asyncio loop.

Python 3.11 has no inotify binding; this is the smallest safe wrapper: a non-blocking fd that
the loop watches with ``add_reader``. Event details are not parsed: the file source rescans the
directory (cheaply, by inode/mtime/size) whenever anything happens there.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os

__all__ = ["DirectoryWatch", "inotify_available"]

_IN_MODIFY = 0x00000002
_IN_ATTRIB = 0x00000004
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_FROM = 0x00000040
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_DELETE = 0x00000200
_IN_DELETE_SELF = 0x00000400
_IN_MOVE_SELF = 0x00000800
_IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
)

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name or "libc.so.6", use_errno=True)
            lib.inotify_init1.argtypes = [ctypes.c_int]
            lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        except (OSError, AttributeError):
            return None
        _libc = lib
    return _libc


def inotify_available() -> bool:
    return _lib() is not None


class DirectoryWatch:
    """Sets ``changed`` whenever something happens in the directory; ``gone`` when it is
    deleted or moved away (the caller then falls back to waiting for it to reappear)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.changed = asyncio.Event()
        self.gone = False
        self._fd = -1

    def start(self) -> None:
        lib = _lib()
        if lib is None:
            raise OSError("inotify is not available")
        fd = lib.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        if lib.inotify_add_watch(fd, os.fsencode(self.path), _MASK) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, os.strerror(err), self.path)
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        # struct inotify_event { int wd; uint32 mask; uint32 cookie; uint32 len; char name[]; }
        pos = 0
        while pos + 16 <= len(data):
            mask = int.from_bytes(data[pos + 4 : pos + 8], "little")
            if mask & (_IN_DELETE_SELF | _IN_MOVE_SELF | 0x00008000):  # 0x8000: IN_IGNORED
                self.gone = True
            pos += 16 + int.from_bytes(data[pos + 12 : pos + 16], "little")
        self.changed.set()

    def close(self) -> None:
        if self._fd >= 0:
            try:
                asyncio.get_running_loop().remove_reader(self._fd)
            except RuntimeError:
                pass
            os.close(self._fd)
            self._fd = -1

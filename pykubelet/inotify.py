"""Linux inotify through ctypes on libc (Python 3.11 has no binding): the descriptor, watches
and event parsing, shared by the static pod source and the log followers.

Everything here is synchronous and non-blocking; callers register the descriptor with the
event loop (``loop.add_reader``) and call ``read_events`` when it is readable.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from dataclasses import dataclass

__all__ = [
    "IN_ATTRIB",
    "IN_CLOSE_WRITE",
    "IN_CREATE",
    "IN_DELETE",
    "IN_DELETE_SELF",
    "IN_IGNORED",
    "IN_MODIFY",
    "IN_MOVED_FROM",
    "IN_MOVED_TO",
    "IN_MOVE_SELF",
    "IN_ONLYDIR",
    "IN_Q_OVERFLOW",
    "InotifyEvent",
    "add_watch",
    "inotify_available",
    "inotify_init",
    "read_events",
    "rm_watch",
]

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000

_EVENT = struct.Struct("iIII")  # struct inotify_event { int wd; u32 mask, cookie, len; }
_libc: ctypes.CDLL | None = None
_loaded = False


@dataclass(frozen=True, slots=True)
class InotifyEvent:
    wd: int
    mask: int
    name: str  # the entry's name inside the watched directory ("" for the directory itself)


def _lib() -> ctypes.CDLL | None:
    global _libc, _loaded
    if not _loaded:
        _loaded = True
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            lib.inotify_init1.argtypes = [ctypes.c_int]
            lib.inotify_init1.restype = ctypes.c_int
            lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            lib.inotify_add_watch.restype = ctypes.c_int
            lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
            lib.inotify_rm_watch.restype = ctypes.c_int
        except (OSError, AttributeError):
            return None
        _libc = lib
    return _libc


def _raise_errno(*extra: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err), *extra)


def inotify_available() -> bool:
    return _lib() is not None


def inotify_init() -> int:
    """A new non-blocking, close-on-exec inotify descriptor; ``OSError`` if there is none."""
    lib = _lib()
    if lib is None:
        raise OSError(errno.ENOSYS, "inotify is not available")
    fd = int(lib.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0:
        _raise_errno()
    return fd


def add_watch(fd: int, path: str, mask: int) -> int:
    lib = _lib()
    assert lib is not None, "inotify_init succeeded, so libc is loaded"
    wd = int(lib.inotify_add_watch(fd, os.fsencode(path), mask))
    if wd < 0:
        _raise_errno(path)
    return wd


def rm_watch(fd: int, wd: int) -> None:
    lib = _lib()
    if lib is not None:
        lib.inotify_rm_watch(fd, wd)


def read_events(fd: int) -> list[InotifyEvent]:
    """Every event queued on ``fd``; ``[]`` when none is (the descriptor is non-blocking)."""
    try:
        buf = os.read(fd, 65536)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EINTR):
            return []
        raise
    events = []
    off = 0
    while off + _EVENT.size <= len(buf):
        wd, mask, _cookie, length = _EVENT.unpack_from(buf, off)
        raw = buf[off + _EVENT.size : off + _EVENT.size + length].rstrip(b"\0")
        events.append(InotifyEvent(wd, mask, os.fsdecode(raw)))
        off += _EVENT.size + length
    return events

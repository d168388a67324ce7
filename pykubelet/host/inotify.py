"""Linux inotify through ctypes on libc (Python 3.11 has no binding), and the one asyncio
watcher built on it, shared by the static pod source and the log followers.

The binding (``inotify_init``, ``add_watch``, ``read_events``) is synchronous and
non-blocking. ``DirectoryWatcher`` owns one descriptor read by the event loop: it watches the
directories of the paths it is given and calls the listeners registered for a file name, or
for every entry of a directory (``watch_directory``). Several listeners in one directory share
its watch (inotify returns one descriptor per inode). When a watched directory is deleted or
moved away its watch is dropped and its listeners are woken; ``is_watching`` then says False
and callers fall back to polling until it reappears.
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
from dataclasses import dataclass

__all__ = [
    "DirectoryWatcher",
    "Listener",
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


log = logging.getLogger(__name__)

_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
_ANY = ""  # the listener key for "any entry of the directory"

Listener = Callable[[], None]


class DirectoryWatcher:
    """One inotify descriptor on the event loop; listeners per file name or per directory."""

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._fd = fd
        self._loop = loop
        self._wd_by_dir: dict[str, int] = {}
        self._dir_by_wd: dict[int, str] = {}
        # directory → file name (or _ANY) → listeners
        self._listeners: dict[str, dict[str, list[Listener]]] = {}
        loop.add_reader(fd, self._on_readable)

    @classmethod
    def create(cls) -> DirectoryWatcher | None:
        """A watcher on the running loop, or None where inotify is unavailable (callers poll)."""
        try:
            fd = inotify_init()
        except OSError as e:
            log.warning("inotify unavailable (%s): polling instead", e.strerror)
            return None
        return cls(fd, asyncio.get_running_loop())

    def add(self, path: str, listener: Listener) -> bool:
        """Call ``listener`` (on the loop) whenever ``path`` or its directory entry changes."""
        directory, name = os.path.split(os.path.abspath(path))
        return self._add(directory, name, listener)

    def watch_directory(self, directory: str, listener: Listener) -> bool:
        """Call ``listener`` whenever any entry of ``directory`` changes, or it goes away."""
        return self._add(os.path.abspath(directory), _ANY, listener)

    def unwatch_directory(self, directory: str, listener: Listener) -> None:
        self._remove(os.path.abspath(directory), _ANY, listener)

    def is_watching(self, directory: str) -> bool:
        return os.path.abspath(directory) in self._wd_by_dir

    def _add(self, directory: str, name: str, listener: Listener) -> bool:
        if directory not in self._wd_by_dir:
            try:
                wd = add_watch(self._fd, directory, _MASK)
            except OSError:
                return False
            self._wd_by_dir[directory] = wd
            self._dir_by_wd[wd] = directory
        self._listeners.setdefault(directory, {}).setdefault(name, []).append(listener)
        return True

    def remove(self, path: str, listener: Listener) -> None:
        directory, name = os.path.split(os.path.abspath(path))
        self._remove(directory, name, listener)

    def _remove(self, directory: str, name: str, listener: Listener) -> None:
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
                try:
                    rm_watch(self._fd, wd)
                except OSError:
                    pass  # the kernel already dropped it (the directory went away)

    @property
    def watches(self) -> int:
        return len(self._wd_by_dir)

    def close(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)

    def _forget(self, wd: int, directory: str) -> None:
        del self._dir_by_wd[wd]
        self._wd_by_dir.pop(directory, None)

    def _on_readable(self) -> None:
        woken: set[int] = set()
        try:
            events = read_events(self._fd)
        except OSError:
            events = []
        for event in events:
            if event.mask & IN_Q_OVERFLOW:
                targets = [ls for names in self._listeners.values() for ls in names.values()]
            else:
                directory = self._dir_by_wd.get(event.wd)
                if directory is None:
                    continue
                names = self._listeners.get(directory, {})
                if event.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
                    # The directory is gone (or moved: its watch would follow the old inode).
                    # Forget the watch (its number may be reused) and wake every listener.
                    if event.mask & IN_MOVE_SELF:
                        try:
                            rm_watch(self._fd, event.wd)
                        except OSError:
                            pass
                    self._forget(event.wd, directory)
                    targets = list(names.values())
                else:
                    targets = [names.get(event.name, []), names.get(_ANY, [])]
            for listeners in targets:
                for listener in listeners:
                    if id(listener) not in woken:
                        woken.add(id(listener))
                        listener()

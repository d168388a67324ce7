"""Directory change notifications through Linux inotify, for log following.

One ``DirectoryWatcher`` owns one inotify descriptor, read by the event loop; it watches the
directories of followed files and wakes the listeners registered for a file name in them.
Several files in one directory share its watch (inotify returns one descriptor per inode).
``DirectoryWatcher.create()`` returns None where inotify is unavailable; callers then poll.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from pykubelet.inotify import (
    IN_ATTRIB,
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_IGNORED,
    IN_MODIFY,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    add_watch,
    inotify_init,
    read_events,
    rm_watch,
)

__all__ = ["DirectoryWatcher"]

log = logging.getLogger(__name__)

_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE

Listener = Callable[[], None]


class DirectoryWatcher:
    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._fd = fd
        self._loop = loop
        self._wd_by_dir: dict[str, int] = {}
        self._dir_by_wd: dict[int, str] = {}
        # directory → file name → listeners
        self._listeners: dict[str, dict[str, list[Listener]]] = {}
        loop.add_reader(fd, self._on_readable)

    @classmethod
    def create(cls) -> DirectoryWatcher | None:
        try:
            fd = inotify_init()
        except OSError as e:
            log.warning("inotify unavailable (%s): log following polls", e.strerror)
            return None
        return cls(fd, asyncio.get_running_loop())

    def add(self, path: str, listener: Listener) -> bool:
        """Call ``listener`` (on the loop) whenever ``path`` or its directory entry changes."""
        directory, name = os.path.split(os.path.abspath(path))
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
                rm_watch(self._fd, wd)

    @property
    def watches(self) -> int:
        return len(self._wd_by_dir)

    def close(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)

    def _on_readable(self) -> None:
        woken: set[int] = set()
        for event in read_events(self._fd):
            if event.mask & IN_Q_OVERFLOW:
                targets = [ls for names in self._listeners.values() for ls in names.values()]
            else:
                directory = self._dir_by_wd.get(event.wd)
                if directory is None:
                    continue
                names = self._listeners.get(directory, {})
                if event.mask & IN_IGNORED:
                    # The directory is gone and the kernel dropped the watch (its number may
                    # be reused): forget it and wake its listeners; they fall back to polling.
                    del self._dir_by_wd[event.wd]
                    self._wd_by_dir.pop(directory, None)
                    targets = list(names.values())
                else:
                    targets = [names.get(event.name, [])]
            for listeners in targets:
                for listener in listeners:
                    if id(listener) not in woken:
                        woken.add(id(listener))
                        listener()

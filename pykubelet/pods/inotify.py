"""One directory watched for any change, readable from the asyncio loop (the static pod
source). Event details are not needed: the source rescans the directory (cheaply, by
inode/mtime/size) whenever anything happens there."""

from __future__ import annotations

import asyncio
import os

from pykubelet.inotify import (
    IN_ATTRIB,
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_MODIFY,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_ONLYDIR,
    add_watch,
    inotify_available,
    inotify_init,
    read_events,
)

__all__ = ["DirectoryWatch", "inotify_available"]

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


class DirectoryWatch:
    """Sets ``changed`` whenever something happens in the directory; ``gone`` when it is
    deleted or moved away (the caller then falls back to waiting for it to reappear)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.changed = asyncio.Event()
        self.gone = False
        self._fd = -1

    def start(self) -> None:
        fd = inotify_init()
        try:
            add_watch(fd, self.path, _MASK)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            events = read_events(self._fd)
        except OSError:
            events = []
        if any(e.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED) for e in events):
            self.gone = True
        self.changed.set()

    def close(self) -> None:
        if self._fd >= 0:
            try:
                asyncio.get_running_loop().remove_reader(self._fd)
            except RuntimeError:
                pass
            os.close(self._fd)
            self._fd = -1

"""The local side of an exec session: raw mode for a TTY, its size, stdin as async chunks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import termios
import tty
from collections.abc import AsyncIterator, Iterator
from typing import BinaryIO

__all__ = ["raw_terminal", "read_chunks", "resize_payload"]


@contextlib.contextmanager
def raw_terminal(fd: int, enabled: bool) -> Iterator[None]:
    """Raw mode while the session runs (keys go to the remote shell), restored after."""
    if not enabled:
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def resize_payload(fd: int) -> bytes:
    """``{"Width":w,"Height":h}`` of the terminal on ``fd`` (COLUMNS/LINES play no part)."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        size = shutil.get_terminal_size()
    return json.dumps({"Width": size.columns, "Height": size.lines}).encode()


async def read_chunks(stdin: BinaryIO) -> AsyncIterator[bytes]:
    """stdin's bytes as they come; ends at EOF. Regular files are read directly (epoll cannot
    watch them); ttys and pipes wake the loop when readable."""
    fd = stdin.fileno()
    if stat.S_ISREG(os.fstat(fd).st_mode):
        while chunk := os.read(fd, 65536):
            yield chunk
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    loop.add_reader(fd, lambda: queue.put_nowait(os.read(fd, 65536)))
    try:
        while chunk := await queue.get():
            yield chunk
    finally:
        loop.remove_reader(fd)

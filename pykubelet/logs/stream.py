"""Serve one container log: the history of the current file, then (optionally) follow it.

``stream_log`` writes through an async ``write`` callback, so it knows nothing of HTTP. The
history part reads the file once off the event loop; following goes through a shared
``TailHub`` (one watcher per file).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

from pykubelet.logs.follow import Subscription, TailHub
from pykubelet.logs.options import LogOptions
from pykubelet.logs.render import LogRenderer

__all__ = ["line_pieces", "stream_log", "tail_range"]

Write = Callable[[bytes], Awaitable[None]]
_WRITE_CHUNK = 1 << 20


def tail_range(fd: int, size: int, n: int | None, block: int = 1 << 16) -> tuple[int, int]:
    """(start, end) byte offsets of the last ``n`` complete lines of the open file (all of
    them when ``n`` is None), read backwards from the end so a short tail of a big file
    costs a few blocks, not the file."""
    pos = size
    end: int | None = None
    count = 0
    while pos > 0:
        length = min(block, pos)
        pos -= length
        data = os.pread(fd, length, pos)
        i = len(data)
        if end is None:
            j = data.rfind(b"\n")
            if j < 0:
                continue
            end = pos + j + 1
            if n is None:
                return 0, end
            if n == 0:
                return end, end
            i = j
        assert n is not None
        while (j := data.rfind(b"\n", 0, i)) >= 0:
            count += 1
            if count == n:
                return pos + j + 1, end
            i = j
    return 0, end or 0


def _read_history(path: str, tail_lines: int | None) -> tuple[int, int, bytes]:
    """(inode, end offset, the requested complete lines); nothing if the file does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0, 0, b""
    try:
        st = os.fstat(fd)
        start, end = tail_range(fd, st.st_size, tail_lines)
        parts = []
        pos = start
        while pos < end:
            data = os.pread(fd, min(_WRITE_CHUNK, end - pos), pos)
            if not data:
                break
            parts.append(data)
            pos += len(data)
        return st.st_ino, end, b"".join(parts)
    finally:
        os.close(fd)


def _read_range(path: str, inode: int, start: int, end: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return b""
    try:
        if os.fstat(fd).st_ino != inode:
            return b""  # rotated away: those bytes are gone, as upstream would lose them
        return os.pread(fd, end - start, start)
    finally:
        os.close(fd)


def line_pieces(data: bytes, size: int) -> list[bytes]:
    """``data`` (complete lines) cut into pieces of about ``size`` bytes, only at newlines."""
    pieces = []
    i = 0
    while i < len(data):
        end = data.rfind(b"\n", i, i + size) + 1
        if end <= i:
            nl = data.find(b"\n", i + size)
            end = len(data) if nl < 0 else nl + 1
        pieces.append(data[i:end])
        i = end
    return pieces


async def _emit(renderer: LogRenderer, data: bytes, write: Write) -> None:
    for piece in line_pieces(data, _WRITE_CHUNK):
        out = renderer.feed(piece)
        if out:
            await write(out)
        if renderer.done:
            return


async def stream_log(
    path: str,
    opts: LogOptions,
    write: Write,
    *,
    now_s: float,
    hub: TailHub | None = None,
    alive: Callable[[], Awaitable[bool]] | None = None,
) -> None:
    """Write the log at ``path`` per ``opts``; follow through ``hub`` when ``opts.follow`` and
    a hub and ``alive`` are given, until the container ends (``alive`` false) or the limit."""
    renderer = LogRenderer(
        timestamps=opts.timestamps, since_ns=opts.since_ns(now_s), limit_bytes=opts.limit_bytes
    )
    if not (opts.follow and hub is not None and alive is not None):
        _, _, data = await asyncio.to_thread(_read_history, path, opts.tail_lines)
        await _emit(renderer, data, write)
        return
    with hub.subscribe(path, alive) as sub:
        inode, end, data = await asyncio.to_thread(_read_history, path, opts.tail_lines)
        await _emit(renderer, data, write)
        await _follow(sub, path, inode, end, renderer, write)


async def _follow(
    sub: Subscription, path: str, inode: int, pos: int, renderer: LogRenderer, write: Write
) -> None:
    # If the file rotated between subscribing and reading the history, the tail still has
    # the old file's end to deliver: we skip it (we have read the new file already).
    visited = {sub.start_inode} if sub.start_inode and sub.start_inode != inode else set()
    while not renderer.done:
        chunk = await sub.next()
        if chunk is None:
            return
        if chunk.inode != inode:
            if chunk.inode in visited:
                continue
            visited.add(inode)
            inode, pos = chunk.inode, 0
        end = chunk.offset + len(chunk.data)
        if end <= pos:
            continue
        if chunk.offset > pos:
            gap = await asyncio.to_thread(_read_range, path, inode, pos, chunk.offset)
            await _emit(renderer, gap, write)
            data = chunk.data
        else:
            data = chunk.data[pos - chunk.offset :]
        pos = end
        await _emit(renderer, data, write)

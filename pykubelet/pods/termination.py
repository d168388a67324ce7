"""Termination messages: ``terminationMessagePolicy: FallbackToLogsOnError``.

When a container fails (non-zero exit) without a message, upstream fills ``terminated.message``
with the end of its log: the last 80 lines, at most 2048 bytes. ``fallback_message`` reads that
from the CRI log file (decoded with ``pykubelet.logs``); it reads only the file's tail.
"""

from __future__ import annotations

import os

from pykubelet.logs import parse_record

__all__ = ["MAX_MESSAGE_LOG_BYTES", "MAX_MESSAGE_LOG_LINES", "fallback_message"]

MAX_MESSAGE_LOG_LINES = 80  # upstream MaxContainerTerminationMessageLogLines
MAX_MESSAGE_LOG_BYTES = 2048  # upstream MaxContainerTerminationMessageLogLength
_READ_BYTES = 256 * 1024


def fallback_message(log_path: str) -> str:
    """The last lines a container wrote (both streams, in order); "" when there is no log."""
    try:
        with open(log_path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _READ_BYTES))
            raw = f.read()
            if size > _READ_BYTES:
                raw = raw.split(b"\n", 1)[-1]  # drop the cut first record
    except OSError:
        return ""
    content = bytearray()
    for line in raw.splitlines():
        try:
            content += parse_record(line).content
        except ValueError:
            continue
    lines = bytes(content).splitlines(keepends=True)[-MAX_MESSAGE_LOG_LINES:]
    tail = b"".join(lines)[-MAX_MESSAGE_LOG_BYTES:]
    return tail.decode(errors="replace")

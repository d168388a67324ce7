"""Termination messages: the ``terminationMessagePath`` file, and
``terminationMessagePolicy: FallbackToLogsOnError``.

Each container with an image root filesystem gets a host file bind-mounted at its
``terminationMessagePath``; the host path travels in the container's annotation
``TERMINATION_MESSAGE_ANNOTATION`` so the worker can read it after the exit (at most 4096
bytes, as upstream). When a container fails (non-zero exit) without a message, upstream fills
``terminated.message`` with the end of its log: the last 80 lines, at most 2048 bytes.
``fallback_message`` reads that from the CRI log file (decoded with ``pykubelet.logs``); it
reads only the file's tail.
"""

from __future__ import annotations

import os

from pykubelet.logs import parse_record

__all__ = [
    "MAX_MESSAGE_FILE_BYTES",
    "MAX_MESSAGE_LOG_BYTES",
    "MAX_MESSAGE_LOG_LINES",
    "TERMINATION_MESSAGE_ANNOTATION",
    "create_message_file",
    "fallback_message",
    "message_file_path",
    "read_message_file",
]

MAX_MESSAGE_LOG_LINES = 80  # upstream MaxContainerTerminationMessageLogLines
MAX_MESSAGE_LOG_BYTES = 2048  # upstream MaxContainerTerminationMessageLogLength
MAX_MESSAGE_FILE_BYTES = 4096  # upstream: the file is read up to 4 KiB
TERMINATION_MESSAGE_ANNOTATION = "io.pykubelet.termination-message-file"
_READ_BYTES = 256 * 1024


def message_file_path(pods_dir: str, pod_uid: str, container: str, attempt: int) -> str:
    """Where one container attempt's termination message goes on the host (no I/O)."""
    return os.path.join(pods_dir, pod_uid, "containers", container, str(attempt))


def create_message_file(path: str) -> None:
    """Create the file empty and writable by any container user (blocking: a new inode)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb"):
        pass
    os.chmod(path, 0o666)


def read_message_file(path: str) -> str:
    """The message a container wrote to its termination-message file ("" if none)."""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_MESSAGE_FILE_BYTES).decode(errors="replace")
    except OSError:
        return ""


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

"""Who listens on a TCP port: for the "port in use" start-up error (no ``ss`` or ``lsof`` exec).

``/proc/net/tcp{,6}`` gives the listening socket's inode; the process holding a descriptor to
``socket:[inode]`` owns it. Without root only our own processes are visible: the answer is then
``None`` and the caller says "unknown".
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["listening_inodes", "port_owner"]

_LISTEN = "0A"


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[int]:
    """Inodes of the TCP sockets listening on ``port`` (any address, v4 or v6)."""
    inodes: set[int] = set()
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (proc / "net" / name).read_text().splitlines()[1:]:
                cols = line.split()
                if len(cols) <= 9 or cols[3] != _LISTEN:
                    continue
                if int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(int(cols[9]))
    return inodes


def port_owner(port: int, proc: Path = Path("/proc")) -> str | None:
    """``"name (pid N)"`` of a process listening on ``port``, or None when not visible."""
    wanted = {f"socket:[{i}]" for i in listening_inodes(port, proc)}
    if not wanted:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.scandir(entry / "fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path) in wanted:
                        comm = (entry / "comm").read_text().strip()
                        return f"{comm} (pid {entry.name})"
    return None

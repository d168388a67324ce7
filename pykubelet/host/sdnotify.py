"""systemd's notify protocol (``Type=notify``): READY=1, STOPPING=1, WATCHDOG=1.

A datagram to the unix socket named by ``NOTIFY_SOCKET`` (``@name`` is the abstract namespace).
Ten lines of protocol, so no library (python-systemd needs libsystemd headers to build); see
sd_notify(3). Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Mapping

__all__ = ["notify", "watchdog_interval_s", "watchdog_loop"]


def _address(env: Mapping[str, str]) -> str | None:
    path = env.get("NOTIFY_SOCKET", "")
    if not path or path[0] not in "/@":
        return None
    return "\0" + path[1:] if path[0] == "@" else path


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (``"READY=1\\nSTATUS=..."``); False when not under systemd or it failed."""
    address = _address(os.environ if env is None else env)
    if address is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            s.sendto(state.encode(), address)
        except OSError:
            return False
    return True


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """Half of ``WATCHDOG_USEC`` (as sd_watchdog_enabled(3) advises), when it is meant for us."""
    e = os.environ if env is None else env
    usec, pid = e.get("WATCHDOG_USEC", ""), e.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


async def watchdog_loop(interval_s: float) -> None:
    """Ping the watchdog while the event loop is alive (a stuck loop stops the pings)."""
    while True:
        with contextlib.suppress(OSError):
            notify("WATCHDOG=1")
        await asyncio.sleep(interval_s)

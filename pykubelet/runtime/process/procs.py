"""Host processes: identity (pid + start time, against pid reuse), liveness and waiting."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

__all__ = [
    "ProcessIdentity",
    "alive",
    "identity",
    "signal_process",
    "wait_exec",
    "wait_exit",
]

ProcessIdentity = tuple[int, int]  # (pid, start time in clock ticks since boot)


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # the command may contain spaces and parentheses: fields start after the last ')'
    rest = raw[raw.rfind(b")") + 2 :].split()
    return rest[0].decode(), int(rest[19])


def identity(pid: int) -> ProcessIdentity | None:
    st = _stat(pid)
    return None if st is None else (pid, st[1])


def alive(ident: ProcessIdentity | None) -> bool:
    """True if that very process still runs (a zombie or a reused pid does not count)."""
    if ident is None or ident[0] <= 0:
        return False
    st = _stat(ident[0])
    return st is not None and st[1] == ident[1] and st[0] not in ("Z", "X")


def signal_process(ident: ProcessIdentity | None, sig: int, *, group: bool = False) -> bool:
    if not alive(ident):
        return False
    assert ident is not None
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(ident[0], sig)
        else:
            os.kill(ident[0], sig)
        return True
    return False


async def wait_exec(pid: int, marker: bytes, timeout_s: float) -> None:
    """Wait until ``pid`` no longer runs a command line containing ``marker`` (it exec'd or
    exited). Polls, as there is no event for exec: first every millisecond, then less often,
    so that a hundred containers starting at once do not keep the event loop busy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.001
    while loop.time() < deadline:
        if marker not in _cmdline(pid):
            return
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.02)


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


async def wait_exit(ident: ProcessIdentity | None, timeout_s: float) -> bool:
    """Wait until the process has exited (zombie counts as exited); False on timeout."""
    if not alive(ident):
        return True
    assert ident is not None
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(ident[0])
    except OSError:
        return not alive(ident)
    done: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, wake)
    try:
        if not alive(ident):
            return True
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                await done
        except TimeoutError:
            return not alive(ident)
        return True
    finally:
        loop.remove_reader(fd)
        os.close(fd)


__all__ += ["SIGKILL", "SIGTERM"]
SIGKILL = signal.SIGKILL
SIGTERM = signal.SIGTERM

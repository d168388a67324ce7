"""Host processes: identity (pid + start time, against pid reuse), liveness and waiting."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import threading
import weakref

__all__ = [
    "Liveness",
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


class Liveness:
    """``alive()`` for processes asked about again and again (holders, shims), answered from a
    pidfd per process: one non-blocking poll instead of opening and parsing /proc/<pid>/stat.
    A process seen dead stays dead (an identity is never reused). Without pidfds (old kernels,
    no permission) it falls back to ``alive()``. ``forget`` releases a process's pidfd."""

    def __init__(self) -> None:
        self._fds: dict[ProcessIdentity, int] = {}
        self._dead: set[ProcessIdentity] = set()
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._fds)

    def alive(self, ident: ProcessIdentity | None) -> bool:
        if ident is None or ident[0] <= 0 or ident in self._dead:
            return False
        fd = self._fds.get(ident)
        if fd is None:
            if not alive(ident):
                self._dead.add(ident)
                return False
            try:
                fd = os.pidfd_open(ident[0])
            except OSError:
                return alive(ident)
            if not alive(ident):  # the pid was reused between the check and the open
                os.close(fd)
                self._dead.add(ident)
                return False
            with self._lock:
                old = self._fds.setdefault(ident, fd)
            if old != fd:
                os.close(fd)
                fd = old
        try:
            readable, _, _ = select.select([fd], [], [], 0)
        except (OSError, ValueError):  # forgotten meanwhile
            return alive(ident)
        if not readable:
            return True
        self._dead.add(ident)
        self.forget(ident, keep_dead=True)
        return False

    def forget(self, ident: ProcessIdentity | None, *, keep_dead: bool = False) -> None:
        if ident is None:
            return
        with self._lock:
            fd = self._fds.pop(ident, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        if not keep_dead:
            self._dead.discard(ident)


def _close_all(fds: dict[ProcessIdentity, int]) -> None:
    for fd in list(fds.values()):
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()
